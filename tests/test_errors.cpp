// errors.hpp: the hierarchy is errors.hpp's table (docs/errors.md).
#include <gtest/gtest.h>

#include <polyproc/errors.hpp>
#include <type_traits>

namespace mp = polyproc;

static_assert(std::is_base_of_v<std::runtime_error, mp::ProcessError>);
static_assert(std::is_base_of_v<mp::ProcessError, mp::BufferTooShort>);
static_assert(std::is_base_of_v<mp::ProcessError, mp::TimeoutError>);
static_assert(std::is_base_of_v<mp::ProcessError, mp::AuthenticationError>);
static_assert(std::is_base_of_v<mp::ProcessError, mp::RemoteError>);
static_assert(std::is_base_of_v<mp::ProcessError, mp::WorkerLostError>);
static_assert(std::is_base_of_v<mp::ProcessError, mp::DecodeError>);
static_assert(std::is_base_of_v<std::runtime_error, mp::Empty> && !std::is_base_of_v<mp::ProcessError, mp::Empty>);
static_assert(std::is_base_of_v<std::runtime_error, mp::Full> && !std::is_base_of_v<mp::ProcessError, mp::Full>);
static_assert(std::is_base_of_v<std::runtime_error, mp::EOFError>);
static_assert(std::is_base_of_v<std::logic_error, mp::ValueError>);
static_assert(std::is_base_of_v<std::runtime_error, mp::BrokenBarrierError>);
static_assert(std::is_base_of_v<mp::DecodeError, mp::UnpicklingError>);
static_assert(std::is_base_of_v<std::out_of_range, mp::KeyError>);
static_assert(std::is_base_of_v<std::out_of_range, mp::IndexError>);
static_assert(std::is_base_of_v<std::logic_error, mp::TypeError>);
static_assert(std::is_base_of_v<std::logic_error, mp::AttributeError>);
static_assert(std::is_base_of_v<std::overflow_error, mp::OverflowError>);
static_assert(std::is_base_of_v<std::runtime_error, mp::RuntimeError> &&
              !std::is_base_of_v<mp::ProcessError, mp::RuntimeError>);

TEST(Errors, BufferTooShortKeepsTheWholeMessage) {
    mp::BufferTooShort e(std::vector<std::byte>(5, std::byte{7}));
    EXPECT_EQ(e.message().size(), 5u);
    EXPECT_EQ(e.message()[4], std::byte{7});
}

TEST(Errors, RemoteErrorNamesTypeMessageAndPid) {
    mp::RemoteError e("MyError", "went wrong", 1234, "trace");
    EXPECT_EQ(e.type_name(), "MyError");
    EXPECT_EQ(e.remote_message(), "went wrong");
    EXPECT_EQ(e.pid(), 1234);
    EXPECT_NE(std::string(e.what()).find("MyError: went wrong"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("1234"), std::string::npos);
}

TEST(Errors, WorkerLostErrorSaysHowTheWorkerDied) {
    mp::WorkerLostError killed(99, -9, "task 3");
    EXPECT_EQ(killed.exitcode(), -9);
    EXPECT_NE(std::string(killed.what()).find("signal 9, SIGKILL"), std::string::npos);
    mp::WorkerLostError exited(99, 2, "task 4");
    EXPECT_NE(std::string(exited.what()).find("exit code 2"), std::string::npos);
}

TEST(Errors, DefaultMessages) {
    EXPECT_STREQ(mp::Empty().what(), "queue is empty");
    EXPECT_STREQ(mp::Full().what(), "queue is full");
    EXPECT_STREQ(mp::TimeoutError().what(), "timed out");
}
