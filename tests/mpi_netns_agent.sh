#!/bin/sh
# Open MPI's plm_rsh_agent for the two-host MPI tests (tests/test_mpi_jobs.cpp): where mpiexec
# would ssh to the other host, this runs the command in that host's network namespace, named by
# POLYPROC_TEST_NETNS. $1 is the host (its address there); the rest is the command, as for ssh.
shift
exec ip netns exec "$POLYPROC_TEST_NETNS" /bin/sh -c "$*"
