// Shared helpers for polyproc's tests.
#pragma once

#include <gtest/gtest.h>

#include <polyproc/polyproc.hpp>
#include <string>
#include <unistd.h>

namespace mp = polyproc;

// Every test that starts processes derives from this: whatever happens in the test body,
// the children it left behind are killed and reaped.
class ProcessTest : public ::testing::Test {
protected:
    void TearDown() override {
        for (const auto& child : mp::active_children()) {
            child.kill();
            child.join();
        }
    }
};

inline std::string bytes_to_string(const std::vector<std::byte>& b) {
    return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

inline std::vector<std::byte> string_to_bytes(std::string_view s) {
    const auto* p = reinterpret_cast<const std::byte*>(s.data());
    return std::vector<std::byte>(p, p + s.size());
}

// Asserts that `stmt` throws `type` whose what() contains `text`.
#define EXPECT_THROW_WITH(stmt, type, text)                                                     \
    do {                                                                                        \
        try {                                                                                   \
            stmt;                                                                               \
            ADD_FAILURE() << "expected " #type " containing '" << (text) << "', nothing thrown"; \
        } catch (const type& e__) {                                                             \
            EXPECT_NE(std::string(e__.what()).find(text), std::string::npos)                    \
                << "message was: " << e__.what();                                               \
        }                                                                                       \
    } while (0)
