// The FlowAllocator of the "malloc" and "rte_malloc" choices: general-purpose heaps made
// to behave like flow contexts. Each block carries a 48-byte header that links it into
// its flow's list, so that release() can free everything the flow still holds; a byte
// budget per flow (headers included) bounds a flow's memory as a context's size would.
// Cost: one backend allocate/free per block plus a list link, and release() walks the
// flow's blocks (a context allocator drops them at once). No DPDK header: the backend
// decides where memory comes from.
#pragma once

#include <pthread.h>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory_resource>
#include <new>
#include <string>
#include <string_view>

#include "ctxalloc/core/allocator.h"
#include "ctxalloc/core/misuse.h"
#include "flow_allocator.h"

namespace ctxfwd {

/// Where a TrackedFlowAllocator's memory comes from.
template <class B>
concept FlowMemoryBackend = std::default_initializable<B> &&
    requires(B& b, int socket, FlowAllocCounters* c, std::size_t n, std::size_t align, void* p) {
  { B::kName } -> std::convertible_to<std::string_view>;
  { b.bind(socket, c) }
  noexcept;
  /// nullptr when there is no memory (never throws).
  { b.allocate(n, align) }
  noexcept->std::same_as<void*>;
  { b.free(p, n, align) }
  noexcept;
};

/// The C++ heap through std::pmr::new_delete_resource() (so: malloc).
struct MallocBackend {
  static constexpr std::string_view kName = "malloc";
  void bind(int, FlowAllocCounters*) noexcept {}
  void* allocate(std::size_t n, std::size_t align) noexcept {
    try {
      return std::pmr::new_delete_resource()->allocate(n, align);
    } catch (const std::bad_alloc&) {
      return nullptr;
    }
  }
  void free(void* p, std::size_t n, std::size_t align) noexcept {
    std::pmr::new_delete_resource()->deallocate(p, n, align);
  }
};
static_assert(FlowMemoryBackend<MallocBackend>);

/// One flow's memory: a memory_resource whose blocks are listed so that release_all()
/// frees them together, within a byte budget.
template <FlowMemoryBackend Backend>
class TrackedResource final : public std::pmr::memory_resource {
 public:
  TrackedResource() noexcept { head_.prev = head_.next = &head_; }
  TrackedResource(const TrackedResource&) = delete;
  TrackedResource& operator=(const TrackedResource&) = delete;

  /// Must precede any allocation.
  void bind(Backend* backend, FlowAllocCounters* counters, std::size_t budget) noexcept {
    backend_ = backend;
    counters_ = counters;
    budget_ = budget;
  }
  /// Frees every block still held; the resource is empty afterwards.
  void release_all() noexcept {
    Header* h = head_.next;
    while (h != &head_) {
      Header* next = h->next;
      give_back(h);
      h = next;
    }
    head_.prev = head_.next = &head_;
  }
  /// Bytes held, headers included.
  std::size_t bytes() const noexcept { return bytes_; }
  /// Blocks held (walks the list: for tests and checks).
  std::size_t blocks() const noexcept {
    std::size_t n = 0;
    for (const Header* h = head_.next; h != &head_; h = h->next)
      ++n;
    return n;
  }
  /// Walks the block list: links agree both ways, every header names this resource, the
  /// sizes add up to bytes() and stay within the budget. Cost: one pass over the blocks.
  bool check_invariants() const noexcept {
    std::size_t sum = 0;
    const Header* prev = &head_;
    for (const Header* h = head_.next; h != &head_; prev = h, h = h->next) {
      if (h->prev != prev || h->owner != this || h->total <= sizeof(Header)) return false;
      sum += h->total;
      if (sum > budget_) return false;
    }
    return head_.prev == prev && sum == bytes_;
  }

 private:
  template <class>
  friend struct ctxalloc::TestPeer;

  struct alignas(16) Header {
    Header* prev;
    Header* next;
    void* raw;                     // what the backend returned
    const TrackedResource* owner;  // catches foreign pointers
    std::size_t total;             // bytes taken from the backend
    std::size_t align;             // the backend alignment asked for
  };
  static_assert(sizeof(Header) == 48);

  // Header and padding in front of the block: the header ends where the block starts.
  static std::size_t front_bytes(std::size_t align) noexcept {
    return (sizeof(Header) + align - 1) & ~(align - 1);
  }

  void* do_allocate(std::size_t n, std::size_t align) override {
    if (align < alignof(Header)) align = alignof(Header);
    const std::size_t front = front_bytes(align);
    if (n > budget_ || front + n > budget_ - bytes_) {  // no overflow: bytes_ <= budget_
      counters_->failures.add(1);
      throw std::bad_alloc();
    }
    const std::size_t total = front + n;
    void* raw = backend_->allocate(total, align);
    if (raw == nullptr) {
      counters_->failures.add(1);
      throw std::bad_alloc();
    }
    auto* block = static_cast<std::byte*>(raw) + front;
    auto* h = reinterpret_cast<Header*>(block - sizeof(Header));
    *h = Header{&head_, head_.next, raw, this, total, align};
    head_.next->prev = h;
    head_.next = h;
    bytes_ += total;
    counters_->on_allocate(total);
    return block;
  }

  void do_deallocate(void* p, std::size_t n, std::size_t align) override {
    if (p == nullptr) return;
    auto* h = reinterpret_cast<Header*>(static_cast<std::byte*>(p) - sizeof(Header));
    if (align < alignof(Header)) align = alignof(Header);
    // A pointer of another flow or another heap: counted and left alone, never freed
    // into the wrong list. (Reading its would-be header is the price of the check.)
    if (h->owner != this || h->total != front_bytes(align) + n) {
      counters_->misuses.add(1);
      ctxalloc::report_misuse(
          h->owner != this ? ctxalloc::Misuse::foreign_pointer : ctxalloc::Misuse::wrong_size,
          "ctxfwd.TrackedResource", "deallocate", p);
      return;
    }
    h->prev->next = h->next;
    h->next->prev = h->prev;
    give_back(h);
  }

  bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }

  void give_back(Header* h) noexcept {
    const std::size_t total = h->total;
    bytes_ -= total;
    counters_->on_free(total);
    h->owner = nullptr;  // so that a stale copy of this header no longer matches
    backend_->free(h->raw, total, h->align);
  }

  Header head_{};  // sentinel of the circular block list
  Backend* backend_ = nullptr;
  FlowAllocCounters* counters_ = nullptr;
  std::size_t budget_ = 0;
  std::size_t bytes_ = 0;
};

/// A FlowAllocator over a general-purpose heap: a pool of `max_flows` contexts, each a
/// TrackedResource with the configured budget.
template <FlowMemoryBackend Backend>
class TrackedFlowAllocator {
 public:
  static constexpr std::string_view kName = Backend::kName;

  struct Context {
    TrackedResource<Backend> resource;
    Context* next_free = nullptr;
    bool live = false;
  };

  /// A general-purpose heap has no "current" allocator to switch: nothing to do.
  class Scope {
   public:
    Scope(TrackedFlowAllocator&, Context&) noexcept {}
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;
  };

  TrackedFlowAllocator() = default;
  TrackedFlowAllocator(const TrackedFlowAllocator&) = delete;
  TrackedFlowAllocator& operator=(const TrackedFlowAllocator&) = delete;
  ~TrackedFlowAllocator() { destroy(); }

  /// Takes the context pool from the backend (metadata, not counted as flow memory).
  std::string init(const FlowAllocConfig& cfg) {
    if (cfg.counters == nullptr || cfg.max_flows == 0 || cfg.context_bytes == 0)
      return std::string(kName) + ": bad configuration";
    destroy();
    counters_ = cfg.counters;
    owner_ = pthread_self();
    backend_.bind(cfg.socket_id, counters_);
    const std::size_t bytes = sizeof(Context) * cfg.max_flows;
    void* mem = backend_.allocate(bytes, alignof(Context));
    if (mem == nullptr)
      return std::string(kName) + ": no memory for " + std::to_string(cfg.max_flows) +
             " flow contexts (" + std::to_string(bytes >> 10) + " KiB)";
    pool_ = static_cast<Context*>(mem);
    pool_size_ = cfg.max_flows;
    for (std::uint32_t i = pool_size_; i-- > 0;) {
      Context* c = new (pool_ + i) Context;
      c->resource.bind(&backend_, counters_, cfg.context_bytes);
      c->next_free = free_;
      free_ = c;
    }
    counters_->metadata_bytes.set(bytes);
    return {};
  }

  Context* acquire() noexcept {
    Context* c = free_;
    if (c == nullptr) {
      counters_->failures.add(1);
      return nullptr;
    }
    free_ = c->next_free;
    c->live = true;
    counters_->contexts_live.add(1);
    counters_->contexts_acquired.add(1);
    return c;
  }

  std::pmr::memory_resource* resource(Context& c) noexcept { return &c.resource; }

  void release(Context& c) noexcept {
    if (!c.live) {
      counters_->misuses.add(1);
      ctxalloc::report_misuse(ctxalloc::Misuse::double_free, "ctxfwd.TrackedFlowAllocator",
                              "release", &c);
      return;
    }
    c.resource.release_all();
    c.live = false;
    c.next_free = free_;
    free_ = &c;
    counters_->contexts_live.sub(1);
  }

  void* allocate_record(std::size_t n) noexcept {
    return counters_->on_record(backend_.allocate(n, alignof(std::max_align_t)), n);
  }

  void free_record(void* p, std::size_t n) noexcept {
    if (p == nullptr) return;
    counters_->on_record_free(owner_, n);
    backend_.free(p, n, alignof(std::max_align_t));
  }

  /// Contexts handed out and not released (walks the pool: for tests and checks).
  std::uint32_t live_contexts() const noexcept {
    std::uint32_t n = 0;
    for (std::uint32_t i = 0; i < pool_size_; ++i)
      n += pool_[i].live ? 1 : 0;
    return n;
  }
  /// Walks the pool and the free list: every context is either live or on the free list
  /// (once), free ones hold no memory, live ones pass their own check, the counters agree.
  bool check_invariants() const noexcept {
    std::uint32_t free_count = 0;
    for (const Context* c = free_; c != nullptr; c = c->next_free) {
      if (c < pool_ || c >= pool_ + pool_size_ || c->live || c->resource.bytes() != 0 ||
          ++free_count > pool_size_)
        return false;
    }
    std::uint64_t bytes = 0;
    for (std::uint32_t i = 0; i < pool_size_; ++i) {
      if (pool_[i].live && !pool_[i].resource.check_invariants()) return false;
      bytes += pool_[i].resource.bytes();
    }
    const std::uint32_t live = live_contexts();
    return free_count + live == pool_size_ && counters_->contexts_live.get() == live &&
           bytes <= counters_->in_use();
  }

 private:
  // Releases whatever is still live and gives the pool back.
  void destroy() noexcept {
    if (pool_ == nullptr) return;
    for (std::uint32_t i = 0; i < pool_size_; ++i) {
      if (pool_[i].live) release(pool_[i]);
      pool_[i].~Context();
    }
    backend_.free(pool_, sizeof(Context) * pool_size_, alignof(Context));
    counters_->metadata_bytes.set(0);
    pool_ = nullptr;
    pool_size_ = 0;
    free_ = nullptr;
  }

  Backend backend_{};
  FlowAllocCounters* counters_ = nullptr;
  Context* pool_ = nullptr;
  std::uint32_t pool_size_ = 0;
  Context* free_ = nullptr;
  pthread_t owner_{};
};

/// The "malloc" choice.
using MallocFlowAllocator = TrackedFlowAllocator<MallocBackend>;
static_assert(FlowAllocator<MallocFlowAllocator>);

}  // namespace ctxfwd
