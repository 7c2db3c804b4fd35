// polyproc/mpi.hpp as whole MPI jobs: each test runs mpiexec on tests/mpi_job_program (one
// scenario per run) and checks what rank 0 saw and how the job ended. Faults: what Open MPI 4.1
// does is part of what the user sees (without --enable-recovery it ends the whole job when a rank
// dies). Two hosts: a rank in another network namespace, started there as mpiexec would over ssh.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include <stdlib.h>

#include "support.hpp"

using namespace std::chrono_literals;

namespace {

const std::string kProgram = POLYPROC_MPI_JOB_PROGRAM;

std::vector<std::string> mpiexec(std::vector<std::string> args) {
    std::vector<std::string> argv{POLYPROC_MPIEXEC, "--oversubscribe", "--allow-run-as-root"};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
}

bool has(const std::string& output, const std::string& line) { return output.find(line) != std::string::npos; }

// One mpiexec job run to its end (within 120 s: nullopt status if not), and all it printed.
struct Job {
    std::optional<int> status;
    std::string out;
};
Job run_job(std::vector<std::string> argv) {
    Command command(std::move(argv));
    const auto status = command.wait(120s);
    return {status, command.output()};
}

class MpiFaults : public ProcessTest {
protected:
    void SetUp() override {
        ::setenv("ASAN_OPTIONS", "detect_leaks=0", 1);  // Open MPI never frees its own allocations
    }
};

}  // namespace

// A rank that dies mid-burst, under --enable-recovery: the tasks it held fail with
// WorkerLostError naming it; every other task completes; the pool goes on with one worker.
TEST_F(MpiFaults, ARankThatDiesFailsItsTasksAndThePoolGoesOn) {
    const Job job = run_job(mpiexec({"--enable-recovery", "-n", "3", kProgram, "lose-rank"}));
    ASSERT_TRUE(job.status.has_value()) << "the job did not end within 120 s:\n" << job.out;
    const std::string& out = job.out;
    EXPECT_TRUE(has(out, "ok+lost 60")) << out;
    EXPECT_TRUE(has(out, "lost some 1")) << out;
    EXPECT_TRUE(has(out, "MPI rank 2")) << out;
    EXPECT_TRUE(has(out, "its connection")) << out;
    EXPECT_TRUE(has(out, "workers now 1")) << out;
    EXPECT_TRUE(has(out, "after 9")) << out;
    EXPECT_TRUE(has(out, "rank 1 alive 1")) << out;
    EXPECT_TRUE(has(out, "rank 2 alive 0")) << out;
}

// The same without --enable-recovery: Open MPI ends the whole job (rank 0 included) and says why.
TEST_F(MpiFaults, WithoutRecoveryOpenMpiEndsTheJob) {
    const Job job = run_job(mpiexec({"-n", "3", kProgram, "lose-rank"}));
    ASSERT_TRUE(job.status.has_value()) << "the job did not end within 120 s:\n" << job.out;
    EXPECT_NE(*job.status, 0) << job.out;
    EXPECT_TRUE(has(job.out, "rank 2")) << job.out;
    EXPECT_FALSE(has(job.out, "after 9")) << job.out;
}

// A rank that stops answering (SIGSTOP) mid-burst is lost after lost_after (3 s here): its tasks
// fail saying so, the rest complete, and at exit rank 0 ends the job (MPI_Abort), which ends it.
TEST_F(MpiFaults, ARankThatStopsAnsweringIsLostWithinItsBound) {
    const Job job = run_job(mpiexec({"-n", "3", kProgram, "stop-rank"}));
    ASSERT_TRUE(job.status.has_value()) << "the job did not end within 120 s:\n" << job.out;
    const std::string& out = job.out;
    EXPECT_TRUE(has(out, "ok+lost 60")) << out;
    EXPECT_TRUE(has(out, "lost some 1")) << out;
    EXPECT_TRUE(has(out, "stopped answering")) << out;
    EXPECT_TRUE(has(out, "after 9")) << out;
    EXPECT_TRUE(has(out, "rank 2 alive 0")) << out;
}

// A rank that dies while no pool runs (nothing reads its connection then): the next pool finds it
// gone when it starts, gives it up and starts on the other rank; the one after does not try it.
TEST_F(MpiFaults, ARankThatDiesBetweenPoolsIsLeftOutOfTheNext) {
    const Job job = run_job(mpiexec({"--enable-recovery", "-n", "3", kProgram, "idle-rank-dies"}));
    ASSERT_TRUE(job.status.has_value()) << "the job did not end within 120 s:\n" << job.out;
    const std::string& out = job.out;
    EXPECT_TRUE(has(out, "armed 1")) << out;
    EXPECT_TRUE(has(out, "second pool size 1")) << out;
    EXPECT_TRUE(has(out, "second pool works 9")) << out;
    EXPECT_TRUE(has(out, "third pool size 1")) << out;
}

// A rank busy with one long task, after short tasks grew its window, still answers pings: it is
// not lost (lost_after 2 s here, the task 4 s).
TEST_F(MpiFaults, ARankBusyWithALongTaskIsNotLost) {
    const Job job = run_job(mpiexec({"-n", "3", kProgram, "busy-not-lost"}));
    ASSERT_TRUE(job.status.has_value()) << "the job did not end within 120 s:\n" << job.out;
    EXPECT_EQ(*job.status, 0) << job.out;
    EXPECT_TRUE(has(job.out, "lost 0 workers 2")) << job.out;
}

// Ranks that run another build are refused when a pool starts, by rank and host, not crashed into.
TEST_F(MpiFaults, ARankRunningAnotherBinaryIsRefused) {
    const std::string copy = testing::TempDir() + "mpi_job_program_other";
    std::filesystem::copy_file(kProgram, copy, std::filesystem::copy_options::overwrite_existing);
    std::ofstream(copy, std::ios::app) << "another build";
    std::filesystem::permissions(copy, std::filesystem::perms::owner_all);
    const Job job = run_job(mpiexec({"-n", "1", kProgram, "refused", ":", "-n", "2", copy, "refused"}));
    std::remove(copy.c_str());
    ASSERT_TRUE(job.status.has_value()) << "the job did not end within 120 s:\n" << job.out;
    EXPECT_EQ(*job.status, 0) << job.out;
    EXPECT_TRUE(has(job.out, "refused: polyproc::mpi: MPI rank 1")) << job.out;
    EXPECT_TRUE(has(job.out, "runs another program than rank 0")) << job.out;
    EXPECT_FALSE(has(job.out, "started")) << job.out;
}

// Two hosts (support.hpp): ranks 0 and 1 here, rank 2 in the other network namespace, launched
// there by mpiexec through tests/mpi_netns_agent.sh (in place of ssh). Open MPI's shared-memory
// transport is excluded (btl tcp,self), and polyproc's own connection to rank 2 crosses the veth
// pair: what a pool on two real hosts does.
class MpiTwoHosts : public TwoHosts {
protected:
    void SetUp() override {
        TwoHosts::SetUp();
        ::setenv("ASAN_OPTIONS", "detect_leaks=0", 1);
    }
    // The job: ranks 0 and 1 here, rank 2 there; with --enable-recovery when a rank will be lost.
    std::vector<std::string> across_two_hosts(const std::string& scenario, bool recovery = false) {
        hostfile_ = testing::TempDir() + "mpi_hosts_" + std::to_string(::getpid());
        std::ofstream(hostfile_) << "localhost slots=2\n" << there_ << " slots=1\n";
        ::setenv("POLYPROC_TEST_NETNS", ns_.c_str(), 1);
        const std::string net = here_.substr(0, here_.rfind('.')) + ".0/24";
        std::vector<std::string> args{"--hostfile",
                                      hostfile_,
                                      "--mca",
                                      "plm_rsh_agent",
                                      POLYPROC_MPI_NETNS_AGENT,
                                      "--mca",
                                      "btl",
                                      "tcp,self",
                                      "--mca",
                                      "btl_tcp_if_include",
                                      net,
                                      "--mca",
                                      "oob_tcp_if_include",
                                      net,
                                      "-n",
                                      "3",
                                      kProgram,
                                      scenario};
        if (recovery) args.insert(args.begin(), "--enable-recovery");
        return mpiexec(std::move(args));
    }
    void TearDown() override {
        if (!hostfile_.empty()) std::remove(hostfile_.c_str());
        TwoHosts::TearDown();
    }
    std::string hostfile_;
};

TEST_F(MpiTwoHosts, APoolAcrossTwoHostsRunsItsTasksOnBoth) {
    const Job job = run_job(across_two_hosts("two-hosts"));
    ASSERT_TRUE(job.status.has_value()) << "the job did not end within 120 s:\n" << job.out;
    EXPECT_EQ(*job.status, 0) << job.out;
    const std::string& out = job.out;
    // Rank 0's namespace and the other one: tasks ran on both hosts.
    std::size_t hosts = 0;
    for (std::size_t at = 0; (at = out.find("tasks ran in net:", at)) != std::string::npos; ++at) ++hosts;
    EXPECT_EQ(hosts, 2u) << out;
    EXPECT_TRUE(has(out, "squares right 1")) << out;
    EXPECT_TRUE(has(out, "crashes on rank 2 lost alone 1")) << out;
    EXPECT_TRUE(has(out, "after 9")) << out;
}

// The other host vanishes mid-burst (its link deleted: no FIN, no RST): rank 2 is lost within
// lost_after (3 s here), only the tasks it held fail, and the pool goes on with rank 1. Open MPI's
// mpiexec then waits for the vanished host's daemon, which it can no longer reach (its problem, not
// the program's: rank 0 is done): the test ends the job itself.
TEST_F(MpiTwoHosts, AHostThatVanishesMidBurstFailsOnlyTheTasksItHeld) {
    Command run(across_two_hosts("vanish", true));
    std::string out;
    auto until = [&](const std::string& line) {
        while (const auto got = run.next_line(60s)) {
            out += *got + "\n";
            if (has(*got, line)) return true;
        }
        return false;
    };
    ASSERT_TRUE(until("burst started")) << out;
    vanish();
    ASSERT_TRUE(until("workers now")) << out;
    EXPECT_TRUE(has(out, "ok+lost 100")) << out;
    EXPECT_TRUE(has(out, "lost some 1")) << out;
    EXPECT_TRUE(has(out, "MPI rank 2")) << out;
    EXPECT_TRUE(has(out, "stopped answering")) << out;
    EXPECT_TRUE(has(out, "workers now 1")) << out;
}
