// The op-sequence harness shared by the allocator fuzz targets: a fuzz input decodes to
// allocate / free / grow / shrink / reset / check operations with sizes and alignments,
// run against an allocator and against the reference model (tests/support/
// reference_model.h: alignment, size, no overlap, payload kept). Any broken promise
// prints what and aborts, which libFuzzer (and the replay tests) report as a crash.
//
// Input format, a byte stream read front to back (a short stream just ends the run):
//   op byte: op % 8 -> 0..2 allocate, 3..4 free, 5 grow, 6 shrink, 7 reset-or-check
//   allocate: 2 bytes size code, 1 byte alignment code
//   free / grow / shrink: 1 byte picking a live block; grow and shrink one more byte
//     for the amount; grow and shrink also pick Move::allowed / forbidden from the op
//     byte's high bit.
// Sizes are log-scaled (as many small as large requests) up to Limits::max_size.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "ctxalloc/core/allocator.h"
#include "ctxalloc/core/layout.h"
#include "support/reference_model.h"

namespace ctxalloc::fuzz {

/// What a target's allocator accepts and promises.
struct Limits {
  std::size_t max_size = 4096;   ///< largest request
  unsigned max_align_log = 6;    ///< largest alignment: 1 << max_align_log
  std::size_t max_live = 512;    ///< blocks kept live at most (beyond: frees)
  bool exact_bytes = false;      ///< stats().bytes_in_use == the reported sizes of live blocks
  bool empty_after_free = true;  ///< bytes_in_use 0 once every block is freed
};

[[noreturn]] inline void violated(const char* target, const std::string& what) {
  std::fprintf(stderr, "%s: %s\n", target, what.c_str());
  std::abort();
}

/// Reads the input front to back; past its end every read gives 0 and done() is true.
class Reader {
 public:
  Reader(const std::uint8_t* data, std::size_t size) : p_(data), end_(data + size) {}
  bool done() const { return p_ >= end_; }
  std::uint8_t byte() { return p_ < end_ ? *p_++ : 0; }
  std::uint16_t u16() { return static_cast<std::uint16_t>(byte() | (byte() << 8)); }

 private:
  const std::uint8_t* p_;
  const std::uint8_t* end_;
};

/// A size from a 16-bit code: the top 4 bits choose a power of two, the rest a value
/// below it; code 0xF... gives 0 (the zero-size sentinel path).
inline std::size_t decode_size(std::uint16_t code, std::size_t max_size) {
  const unsigned e = code >> 12;
  if (e == 15) return 0;
  const std::size_t span = std::size_t{1} << (e + 1);
  const std::size_t s = 1 + (code & 0xFFF) % span;
  return s > max_size ? 1 + s % max_size : s;
}

/// Runs the ops in data against a (an Allocator) and the reference model. Hooks:
///   bool reset(A&)          -- frees everything at once; false when A cannot
///   std::string after(A&)   -- an extra check after each op ("" when fine)
template <class A, class Hooks>
void run_ops(const char* target, A& a, Hooks& hooks, const Limits& lim, const std::uint8_t* data,
             std::size_t size) {
  testing::ReferenceModel model;
  Reader in(data, size);
  auto fail_if = [&](const std::string& e, const char* when) {
    if (!e.empty()) violated(target, std::string(when) + ": " + e);
  };
  auto free_block = [&](const testing::LiveBlock& lb, bool exact) {
    const Block b{reinterpret_cast<std::byte*>(lb.ptr), exact ? lb.requested : lb.size};
    const std::size_t align = lb.align;
    fail_if(model.remove(lb.ptr), "free");  // checks the payload first
    a.deallocate(b, align);
  };
  std::size_t ops = 0;
  while (!in.done() && ops++ < 4096) {
    const std::uint8_t op = in.byte();
    const Move move = (op & 0x80) != 0 ? Move::forbidden : Move::allowed;
    switch (op % 8) {
      case 0:
      case 1:
      case 2: {
        if (model.count() >= lim.max_live) {
          free_block(model.nth(0), false);
          break;
        }
        const std::size_t sz = decode_size(in.u16(), lim.max_size);
        const std::size_t align = std::size_t{1} << (in.byte() % (lim.max_align_log + 1));
        const Block b = a.allocate(Layout{sz, align});
        if (b.ptr == nullptr) break;  // refusing is allowed; the state must be unchanged
        if (sz == 0) {
          a.deallocate(b, align);  // the zero-size sentinel (or a 1-byte block)
          break;
        }
        fail_if(model.add(b.ptr, sz, b.size, align), "allocate");
        break;
      }
      case 3:
      case 4: {
        const std::uint8_t pick = in.byte();
        if (model.empty()) break;
        free_block(model.nth(pick % model.count()), (pick & 1) != 0);
        break;
      }
      case 5:
      case 6: {
        const std::uint8_t pick = in.byte();
        const std::uint8_t amount = in.byte();
        if (model.empty()) break;
        const testing::LiveBlock lb = model.nth(pick % model.count());
        fail_if(model.verify(lb), "before resize");
        const Block old{reinterpret_cast<std::byte*>(lb.ptr), lb.size};
        Block r;
        std::size_t want;
        if (op % 8 == 5) {
          // Grow asks for more than the block's reported size (a smaller size is a
          // bad argument to grow).
          want = lb.size + 1 + amount * (1 + lim.max_size / 256);
          if (want > 2 * lim.max_size) break;
          r = a.grow(old, Layout{want, lb.align}, move);
        } else {
          if (lb.requested <= 1) break;
          want = 1 + amount % (lb.requested - 1);
          r = a.shrink(old, Layout{want, lb.align}, move);
        }
        if (r.ptr == nullptr) {
          fail_if(model.verify(lb), "after a failed resize");  // the block is intact
          break;
        }
        if (move == Move::forbidden && r.ptr != old.ptr)
          violated(target, "moved a block under Move::forbidden");
        fail_if(model.resize(lb.ptr, r.ptr, want, r.size), "resize");
        break;
      }
      default: {  // 7
        if ((op & 0x40) != 0 && hooks.can_reset()) {
          fail_if(model.verify_all(), "before reset");
          while (!model.empty())
            fail_if(model.remove(model.nth(0).ptr), "reset");
          hooks.reset(a);
        } else if (CheckResult c = a.check_invariants(); !c) {
          violated(target, "check_invariants: " + std::string(c.error()));
        }
        break;
      }
    }
    fail_if(hooks.after(a), "after op");
    if constexpr (requires { a.stats(); }) {
      if (lim.exact_bytes && a.stats().bytes_in_use != model.bytes())
        violated(target, "bytes_in_use " + std::to_string(a.stats().bytes_in_use) +
                             " but the model holds " + std::to_string(model.bytes()));
    }
  }
  fail_if(model.verify_all(), "at the end");
  if (CheckResult c = a.check_invariants(); !c)
    violated(target, "check_invariants at the end: " + std::string(c.error()));
  while (!model.empty())
    free_block(model.nth(0), false);
  if (hooks.can_reset()) hooks.reset(a);
  if (CheckResult c = a.check_invariants(); !c)
    violated(target, "check_invariants after freeing all: " + std::string(c.error()));
  if constexpr (requires { a.stats(); }) {
    if (lim.empty_after_free && a.stats().bytes_in_use != 0)
      violated(target, "bytes_in_use " + std::to_string(a.stats().bytes_in_use) +
                           " after every block was freed");
  }
}

/// Hooks for allocators without reset and without extra checks.
struct NoHooks {
  template <class A>
  std::string after(A&) {
    return "";
  }
  static bool can_reset() { return false; }
  template <class A>
  void reset(A&) {}
};

}  // namespace ctxalloc::fuzz
