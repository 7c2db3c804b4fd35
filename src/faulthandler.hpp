// Python's faulthandler, on in every polyproc child: a child that dies from SIGSEGV, SIGBUS,
// SIGFPE, SIGILL or SIGABRT first writes the stack of the thread that crashed to stderr,
// symbolized, then dies by that signal as it would have (its parent sees the same exit code).
//
//   Fatal error in process ForkPoolWorker-2 (pid 4242): SIGSEGV (Segmentation fault) at address 0x0
//   Stack of the crashing thread (most recent call first):
//     #0 0x5581c0a4b2c1 in crash_on_purpose(int)
//     #1 0x5581c0a61f03 in polyproc::detail::execute_task(...)
//     ...
//
// glibc's backtrace() unwinds (libgcc's DWARF unwinder, through the signal frame: no frame
// pointers needed) and absl::Symbolize names each frame from the ELF symbol tables, demangled;
// both are async-signal-safe once loaded. What is not (loading the unwinder and the symbolizer,
// finding where libc lies) is done by enable(). The handler runs on an alternate
// stack, so a stack overflow is reported too. POLYPROC_FAULTHANDLER=0 in the environment leaves
// the signals alone (the children inherit it).
#pragma once

#include <cstddef>

namespace polyproc::detail::faulthandler {

// Installs the handlers in this process (once; again: nothing).
void enable() noexcept;
// The default dispositions back.
void disable() noexcept;
// Where the handler also writes the crashing frame's function, NUL-terminated, for the parent (a
// pool worker's slot in shared memory): the first frame outside libc, libstdc++ and libgcc, so
// that an abort() or a failed assert names its caller. Null: nowhere.
void set_crash_note(char* buffer, std::size_t size) noexcept;

}  // namespace polyproc::detail::faulthandler
