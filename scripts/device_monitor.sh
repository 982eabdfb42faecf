#!/usr/bin/env bash
# Every 20 s, one line to ${MON_LOG:-/tmp/mon.log}: free disk under /tmp, used host memory, used GPU memory.
# A device call starts it detached so it outlives the call: setsid nohup bash scripts/device_monitor.sh &
# (a machine that fills its disk or memory stops answering; this log says which, from the next call).
while :; do
  echo "$(date +%T) tmp_free=$(df -BG --output=avail /tmp | tail -1 | tr -d ' ') mem_used=$(free -g | awk '/Mem/{print $3}')G" \
    "gpu_used=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader 2>/dev/null)" >> "${MON_LOG:-/tmp/mon.log}"
  sleep 20
done
