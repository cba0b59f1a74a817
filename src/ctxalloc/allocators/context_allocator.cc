// The cold parts of the ContextAllocator: configuration, construction and reset, the
// resize dispatch, statistics and the invariant walk.
#include "ctxalloc/allocators/context_allocator.h"

#include <algorithm>

#include "ctxalloc/allocators/detail/tree_region.h"

namespace ctxalloc {
namespace {

// Usable bytes a tree region over r would have: TreeRegion::format's arithmetic (header,
// one map byte per granule, padding to a granule) without writing anything.
std::size_t tree_usable_bytes(Block r, std::size_t granule) noexcept {
  const auto base = reinterpret_cast<std::uintptr_t>(r.ptr);
  const std::uintptr_t limit = base + r.size;
  const std::uintptr_t map =
      align_up(base, alignof(detail::TreeRegion)) + sizeof(detail::TreeRegion);
  if (map >= limit) return 0;
  std::size_t g = (limit - map) / (granule + 1);
  while (g > 0 && align_up(map + g, granule) + g * granule > limit)
    --g;
  return g * granule;
}

}  // namespace

const char* to_string(Lifetime l) noexcept {
  switch (l) {
    case Lifetime::short_lived:
      return "short_lived";
    case Lifetime::medium:
      return "medium";
    case Lifetime::long_lived:
      return "long_lived";
  }
  return "unknown lifetime";
}

const char* to_string(ContextKind k) noexcept {
  switch (k) {
    case ContextKind::bump:
      return "bump";
    case ContextKind::bitset:
      return "bitset";
    case ContextKind::tree:
      return "tree";
    case ContextKind::none:
      return "none";
    case ContextKind::growing:
      return "growing";
  }
  return "unknown kind";
}

const char* ContextAllocator::to_string(ConfigError e) noexcept {
  switch (e) {
    case ConfigError::none:
      return "no error";
    case ConfigError::bad_lifetime:
      return "not a lifetime (short_lived, medium, long_lived)";
    case ConfigError::null_region:
      return "null or empty region";
    case ConfigError::region_too_small:
      return "region too small for the allocator's metadata and one block of its largest size";
    case ConfigError::bad_block_size:
      return "bit set block size is not a power of two of at least 8 bytes";
    case ConfigError::region_wraps:
      return "region runs past the end of the address space";
  }
  return "unknown error";
}

Block ContextAllocator::tree_region_of(Block region) noexcept {
  const std::byte* object = tree_object_at(region);
  const std::size_t taken = static_cast<std::size_t>(object - region.ptr) + tree_object_bytes();
  if (taken >= region.size) return Block{};
  return Block{region.ptr + taken, region.size - taken};
}

TreeConfig ContextAllocator::tree_config_for(std::size_t region_size) noexcept {
  constexpr std::size_t kMin = TreeConfig::kMinGranule;
  // The most classes a config may have, from the smallest class up.
  constexpr std::size_t kCeiling =
      std::min(TreeConfig::kMaxClassLimit, kMin << (TreeConfig::kMaxClasses - 1));
  std::size_t max = region_size / 4 < kMin ? kMin : std::size_t{1} << log2_floor(region_size / 4);
  if (max > kCeiling) max = kCeiling;
  return *TreeConfig::make(kMin, max);
}

ContextAllocator::ConfigError ContextAllocator::validate(Lifetime lifetime, Block region,
                                                         const ContextOptions& options) noexcept {
  const ContextKind kind = kind_for(lifetime);
  if (kind == ContextKind::none) return ConfigError::bad_lifetime;
  if (region.ptr == nullptr || region.size == 0) return ConfigError::null_region;
  if (region.size > UINTPTR_MAX - reinterpret_cast<std::uintptr_t>(region.ptr))
    return ConfigError::region_wraps;
  switch (kind) {
    case ContextKind::bump:
      return ConfigError::none;
    case ContextKind::bitset:
      switch (BitSetAllocator::validate(region, options.bitset_block_size)) {
        case BitSetAllocator::ConfigError::none:
          return ConfigError::none;
        case BitSetAllocator::ConfigError::region_too_small:
          return ConfigError::region_too_small;
        default:
          return ConfigError::bad_block_size;
      }
    case ContextKind::tree: {
      const TreeConfig cfg = options.tree.value_or(tree_config_for(region.size));
      const Block tree_region = tree_region_of(region);
      return tree_region.ptr == nullptr ||
                     tree_usable_bytes(tree_region, cfg.min_class()) < cfg.max_class()
                 ? ConfigError::region_too_small
                 : ConfigError::none;
    }
    case ContextKind::none:
    case ContextKind::growing:  // not a ContextAllocator kind
      break;
  }
  return ConfigError::bad_lifetime;
}

ContextAllocator::ContextAllocator(Lifetime lifetime, Block region,
                                   const ContextOptions& options) noexcept
    : tag_(ContextKind::bump),
      lifetime_(lifetime),
      config_error_(validate(lifetime, region, options)),
      bitset_block_size_(options.bitset_block_size),
      tree_config_(options.tree.value_or(tree_config_for(region.size))) {
  if (config_error_ == ConfigError::none) {
    tag_ = kind_for(lifetime);
    region_ = region;
  } else {
    report_misuse(Misuse::bad_argument, "context", "construct", region.ptr);
  }
  construct();
}

ContextAllocator::~ContextAllocator() {
  destroy();
}

void ContextAllocator::construct() noexcept {
  if (tag_ == ContextKind::bitset) {
    std::construct_at(&bitset_, region_, bitset_block_size_);
  } else if (tag_ == ContextKind::tree) {
    tree_ = std::construct_at(reinterpret_cast<ContextTree*>(tree_object_at(region_)),
                              tree_region_of(region_), tree_config_);
  } else {
    std::construct_at(&bump_, region_);  // an empty region_ when the configuration was refused
  }
}

void ContextAllocator::destroy() noexcept {
  if (tag_ == ContextKind::bitset) {
    std::destroy_at(&bitset_);
  } else if (tag_ == ContextKind::tree) {
    std::destroy_at(tree_);
  } else {
    std::destroy_at(&bump_);
  }
}

void ContextAllocator::reset() noexcept {
  const Stats s = stats();  // the running allocator's counters, with what reset kept
  const Stats r = retired_.snapshot();
  const std::uint64_t allocated = s.allocations - r.allocations;  // by the running one
  const std::uint64_t freed = s.deallocations - r.deallocations;
  const std::uint64_t dropped = allocated > freed ? allocated - freed : 0;
  // Carry the running allocator's counters into retired_ (s already includes retired_).
  retired_.allocations.add(allocated);
  retired_.deallocations.add(freed + dropped);
  retired_.grows.add(s.grows - r.grows);
  retired_.shrinks.add(s.shrinks - r.shrinks);
  retired_.failures.add(s.failures - r.failures);
  retired_.misuses.add(s.misuses - r.misuses);
  retired_.peak_bytes.raise_to(s.peak_bytes);
  released_by_reset_.add(dropped);
  resets_.add(1);
  // Building afresh costs the metadata only: the bump allocator stores three pointers,
  // the bit set clears its two bit sets, the tree rebuilds its object (~2 KiB of empty
  // tree headers), clears its granule map and files one span (its red-black trees use
  // normal-link hooks, so dropping them is O(1)).
  destroy();
  construct();
  recent_ = nullptr;
}

Block ContextAllocator::grow(Block block, Layout new_layout, Move move) noexcept {
  if (tag_ == ContextKind::bump) {
    const Block b = bump_.grow(block, new_layout, move);
    note_bump_result(b);
    return b;
  }
  if (tag_ == ContextKind::bitset) return bitset_.grow(block, new_layout, move);
  return tree_->grow(block, new_layout, move);
}

Block ContextAllocator::shrink(Block block, Layout new_layout, Move move) noexcept {
  if (tag_ == ContextKind::bump) {
    const Block b = bump_.shrink(block, new_layout, move);
    note_bump_result(b);
    return b;
  }
  if (tag_ == ContextKind::bitset) return bitset_.shrink(block, new_layout, move);
  return tree_->shrink(block, new_layout, move);
}

Stats ContextAllocator::stats() const noexcept {
  Stats s = tag_ == ContextKind::bump     ? bump_.stats()
            : tag_ == ContextKind::bitset ? bitset_.stats()
                                          : tree_->stats();
  const Stats r = retired_.snapshot();
  s.allocations += r.allocations;
  s.deallocations += r.deallocations;
  s.grows += r.grows;
  s.shrinks += r.shrinks;
  s.failures += r.failures;
  s.misuses += r.misuses;
  s.peak_bytes = std::max(s.peak_bytes, r.peak_bytes);
  return s;
}

CheckResult ContextAllocator::check_own() const {
  const auto tag = static_cast<unsigned>(tag_);
  CTXALLOC_INVARIANT(tag <= static_cast<unsigned>(ContextKind::tree), "context: tag ", tag,
                     " names no allocator");
  const bool refused = config_error_ != ConfigError::none;
  const ContextKind want = refused ? ContextKind::bump : kind_for(lifetime_);
  CTXALLOC_INVARIANT(tag_ == want, "context: runs a ", ctxalloc::to_string(tag_),
                     " allocator but its lifetime ", ctxalloc::to_string(lifetime_), " asks for ",
                     ctxalloc::to_string(want));
  if (refused) {
    CTXALLOC_INVARIANT(region_.ptr == nullptr && region_.size == 0 && bump_.capacity() == 0,
                       "context: refused configuration but a region ", region_.ptr, " + ",
                       region_.size);
  }
  switch (tag_) {
    case ContextKind::bump:
      CTXALLOC_INVARIANT(bump_.region() == region_, "context: the bump allocator manages ",
                         bump_.region().ptr, " + ", bump_.region().size, ", not the region ",
                         region_.ptr, " + ", region_.size);
      CTXALLOC_INVARIANT(recent_ == nullptr || contains(recent_), "context: the most recent block ",
                         recent_, " lies outside the region");
      break;
    case ContextKind::bitset:
      CTXALLOC_INVARIANT(bitset_.region() == region_ && bitset_.block_size() == bitset_block_size_,
                         "context: the bit set manages ", bitset_.region().ptr, " + ",
                         bitset_.region().size, " in blocks of ", bitset_.block_size(),
                         ", not the region ", region_.ptr, " + ", region_.size, " in blocks of ",
                         bitset_block_size_);
      break;
    case ContextKind::tree: {
      // The tree object is read only once its address is known to be the right one.
      const Block own = tree_region_of(region_);
      CTXALLOC_INVARIANT(reinterpret_cast<std::byte*>(tree_) == tree_object_at(region_),
                         "context: the tree object is at ", static_cast<const void*>(tree_),
                         ", not at the start of the region ", region_.ptr);
      CTXALLOC_INVARIANT(tree_->region_count() == 1 && tree_->contains(own.ptr) &&
                             tree_->contains(own.end() - 1) && !tree_->contains(own.ptr - 1),
                         "context: the tree does not manage exactly ", own.ptr, " + ", own.size,
                         " after its object (", tree_->region_count(), " regions)");
      CTXALLOC_INVARIANT(tree_->config().min_class() == tree_config_.min_class() &&
                             tree_->config().max_class() == tree_config_.max_class(),
                         "context: the tree's classes ", tree_->config().min_class(), "..",
                         tree_->config().max_class(), " are not the configured ",
                         tree_config_.min_class(), "..", tree_config_.max_class());
      CTXALLOC_INVARIANT(tree_->capacity() >= tree_config_.max_class(), "context: the tree's ",
                         tree_->capacity(), " usable bytes cannot hold its largest class ",
                         tree_config_.max_class());
      break;
    }
    case ContextKind::none:
    case ContextKind::growing:
      break;  // excluded above
  }
  const Stats r = retired_.snapshot();
  CTXALLOC_INVARIANT(r.allocations == 0 || resets_.get() != 0, "context: ", r.allocations,
                     " allocations carried over without a reset");
  CTXALLOC_INVARIANT(released_by_reset_.get() <= r.deallocations,
                     "context: ", released_by_reset_.get(), " blocks released by reset exceed the ",
                     r.deallocations, " deallocations carried over");
  return CheckResult::ok();
}

CheckResult ContextAllocator::check_invariants() const {
  // The tag first: with a bad tag, asking the union's member would read the wrong one.
  if (CheckResult r = check_own(); !r) return r;
  const CheckResult inner = tag_ == ContextKind::bump     ? bump_.check_invariants()
                            : tag_ == ContextKind::bitset ? bitset_.check_invariants()
                                                          : tree_->check_invariants();
  if (!inner) return check_fail("context(", ctxalloc::to_string(tag_), "): ", inner.error());
  const Stats s = stats();
  CTXALLOC_INVARIANT(s.peak_bytes >= s.bytes_in_use, "context: peak ", s.peak_bytes,
                     " below bytes in use ", s.bytes_in_use);
  return CheckResult::ok();
}

}  // namespace ctxalloc
