// libFuzzer target: the switchable API (ctxalloc::allocate / deallocate / reallocate),
// op sequences against the reference model (alloc_ops.h), in thread mode or inside a
// context (the first byte chooses, and the context's lifetime and size). Built as a
// fuzzer in the asan variant (clang); replayed over fuzz/corpus/switchable/ and
// fixed-seed inputs by the fuzz_replay_switchable test in the other variants.
#include "alloc_ops.h"
#include "ctxalloc/switchable/context.h"
#include "ctxalloc/switchable/switchable.h"
#include "ctxalloc/switchable/thread_heap.h"

namespace {

using namespace ctxalloc;

// The switchable API seen as an Allocator: the size it reports is usable_size(), a
// resize is reallocate() (never in place on request, so Move::forbidden is refused),
// and the check walks the thread's heap or the context.
class Switchable {
 public:
  explicit Switchable(Context* context) : context_(context) {}
  Block allocate(Layout l) noexcept {
    void* p = ctxalloc::allocate(l.size, l.align);
    return Block{static_cast<std::byte*>(p), p == nullptr ? 0 : usable_size(p)};
  }
  void deallocate(Block b, std::size_t /*align*/) noexcept {
    if (b.size == 0) {
      ctxalloc::deallocate(b.ptr);
    } else {
      ctxalloc::deallocate(b.ptr, b.size);
    }
  }
  Block grow(Block b, Layout l, Move m) noexcept { return resize(b, l, m); }
  Block shrink(Block b, Layout l, Move m) noexcept { return resize(b, l, m); }
  CheckResult check_invariants() const {
    if (context_ != nullptr) return context_->check_invariants();
    return current_thread_heap()->check_invariants();
  }

 private:
  Block resize(Block b, Layout l, Move m) noexcept {
    if (m == Move::forbidden) return Block{};  // reallocate may move: refused, b intact
    void* p = reallocate(b.ptr, l.size, l.align);
    return Block{static_cast<std::byte*>(p), p == nullptr ? 0 : usable_size(p)};
  }
  Context* context_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::uint8_t first = size > 0 ? data[0] : 0;
  fuzz::NoHooks hooks;
  fuzz::Limits lim;
  lim.max_size = 256 * 1024;
  lim.max_align_log = 12;
  lim.max_live = 128;
  lim.empty_after_free = false;  // no Stats: usable_size() is checked per block instead
  const std::uint8_t* ops = size > 0 ? data + 1 : data;
  const std::size_t nops = size > 0 ? size - 1 : 0;
  if ((first & 1) == 0) {
    ModeScope mode(Mode::thread);
    Switchable a(nullptr);
    fuzz::run_ops("switchable_fuzz(thread)", a, hooks, lim, ops, nops);
    return 0;
  }
  const Lifetime l = (first >> 1) % 3 == 0   ? Lifetime::short_lived
                     : (first >> 1) % 3 == 1 ? Lifetime::medium
                                             : Lifetime::long_lived;
  const std::size_t bytes = Context::kMinBytes << ((first >> 3) % 4);
  Context* c = Context::create(l, bytes);
  if (c == nullptr)
    fuzz::violated("switchable_fuzz(context)", "Context::create refused a valid size");
  {
    ContextScope scope(*c);
    Switchable a(c);
    fuzz::run_ops("switchable_fuzz(context)", a, hooks, lim, ops, nops);
  }
  if (c->live_blocks() != 0)
    fuzz::violated("switchable_fuzz(context)", "live blocks after every free");
  c->release();
  return 0;
}
