#!/bin/sh
# Runs "$@" (a timed bench) ahead of the machine's other work.
#
# With sched_autogroup_enabled=1 (this machine's kernel), the scheduler shares the CPU between
# sessions ("autogroups") first and only then between the processes of a session, so
# `nice -n -10 cargo bench …` outranks nothing but its own session: a build in another session
# still gets an equal share. This script starts a session of its own (run it under `setsid`),
# sets that session's autogroup nice to -10 (root), then runs the command at nice -10.
#
#   setsid s3-sink/benches/prio.sh cargo bench -p s3-sink --bench encode -- --warm-up-time 1 --measurement-time 4
#   setsid s3-sink/benches/prio.sh .venv/bin/python s3-sink/benches/pyarrow_write.py
#
# Another session's whole autogroup can be pushed back the same way:
#   echo 19 > /proc/<pid>/autogroup   (and `echo 0` to undo)
set -eu
if [ -w /proc/self/autogroup ]; then
    echo -10 > /proc/self/autogroup
fi
exec nice -n -10 "$@"
