// A reference model of live blocks, independent of the allocators under test: it shares
// no code with them (plain pointers and sizes, std::map) and checks what any correct
// allocator must guarantee: blocks are aligned, at least as large as asked, never
// overlap, and keep their bytes until freed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

namespace ctxalloc::testing {

struct LiveBlock {
  unsigned char* ptr = nullptr;
  std::size_t requested = 0;  // size the caller asked for (and wrote)
  std::size_t size = 0;       // size the allocator reported
  std::size_t align = 1;
  std::uint64_t tag = 0;  // seeds the payload pattern
};

class ReferenceModel {
 public:
  ReferenceModel() = default;
  /// whole_blocks: the payload covers every byte the allocator reported (every usable
  /// byte must be writable and the block's alone), not only the bytes asked for.
  explicit ReferenceModel(bool whole_blocks) : whole_(whole_blocks) {}

  /// Records a new block after checking it; returns an error message or "".
  std::string add(void* p, std::size_t requested, std::size_t size, std::size_t align) {
    auto* b = static_cast<unsigned char*>(p);
    if (b == nullptr) return "null block recorded as live";
    if (reinterpret_cast<std::uintptr_t>(b) % align != 0) return msg("misaligned block", b, align);
    if (size < requested) return msg("block smaller than asked", b, size);
    if (const std::string e = overlap(b, size); !e.empty()) return e;
    LiveBlock lb{b, requested, size, align, next_tag_++};
    insert(lb);
    fill(lb);
    return "";
  }

  /// Checks the payload and forgets the block; returns an error message or "".
  std::string remove(void* p) {
    auto it = live_.find(key(p));
    if (it == live_.end()) return msg("freeing a block the model does not know", p, 0);
    std::string e = verify(it->second);
    erase(it);
    return e;
  }

  /// A block was resized (maybe moved): the first min(old, new) requested bytes must
  /// have survived, and the block must meet the alignment of the resize (align; 0: the
  /// one it had); the rest of the new block is then filled afresh.
  std::string resize(void* old_p, void* new_p, std::size_t requested, std::size_t size,
                     std::size_t align = 0) {
    auto it = live_.find(key(old_p));
    if (it == live_.end()) return msg("resizing a block the model does not know", old_p, 0);
    LiveBlock lb = it->second;
    erase(it);
    auto* nb = static_cast<unsigned char*>(new_p);
    const std::size_t had = payload(lb);
    const std::size_t kept = requested < had ? requested : had;
    if (align != 0) lb.align = align;
    if (reinterpret_cast<std::uintptr_t>(nb) % lb.align != 0)
      return msg("resized block misaligned", nb, lb.align);
    if (size < requested) return msg("resized block smaller than asked", nb, size);
    if (const std::string e = overlap(nb, size); !e.empty()) return e;
    if (const std::size_t i = first_mismatch(nb, lb.tag, kept); i != kept)
      return msg("payload lost in resize at offset", nb, i);
    lb.ptr = nb;
    lb.requested = requested;
    lb.size = size;
    lb.tag = next_tag_++;
    insert(lb);
    fill(lb);
    return "";
  }

  std::string verify(const LiveBlock& lb) const {
    const std::size_t n = payload(lb);
    if (const std::size_t i = first_mismatch(lb.ptr, lb.tag, n); i != n)
      return msg("payload corrupted at offset", lb.ptr, i);
    return "";
  }

  std::string verify_all() const {
    for (const auto& [k, lb] : live_) {
      if (std::string e = verify(lb); !e.empty()) return e;
    }
    return "";
  }

  const LiveBlock* find(const void* p) const {
    auto it = live_.find(key(p));
    return it == live_.end() ? nullptr : &it->second;
  }

  /// The i-th live block (i < count()), in no particular order: O(1), for random picks.
  const LiveBlock& nth(std::size_t i) const { return live_.at(order_[i]); }

  /// Position of p for nth(), or count() when p is not live.
  std::size_t index_of(const void* p) const {
    auto it = index_.find(key(p));
    return it == index_.end() ? order_.size() : it->second;
  }

  std::size_t count() const { return live_.size(); }
  std::size_t bytes() const { return bytes_; }
  bool empty() const { return live_.empty(); }
  const std::map<std::uintptr_t, LiveBlock>& blocks() const { return live_; }

 private:
  static std::uintptr_t key(const void* p) { return reinterpret_cast<std::uintptr_t>(p); }

  // The bytes of a block that carry its pattern.
  std::size_t payload(const LiveBlock& lb) const { return whole_ ? lb.size : lb.requested; }

  void insert(const LiveBlock& lb) {
    live_.emplace(key(lb.ptr), lb);
    index_[key(lb.ptr)] = order_.size();
    order_.push_back(key(lb.ptr));
    bytes_ += lb.size;
  }

  void erase(std::map<std::uintptr_t, LiveBlock>::iterator it) {
    const std::uintptr_t k = it->first;
    bytes_ -= it->second.size;
    live_.erase(it);
    const std::size_t i = index_.at(k);
    order_[i] = order_.back();  // swap-remove keeps nth() O(1)
    index_[order_[i]] = i;
    order_.pop_back();
    index_.erase(k);
  }

  // The payload of a block with this tag: word w (8 bytes) is mix(tag, w), different for
  // every block and offset, and cheap enough to write and check megabytes of.
  static std::uint64_t mix(std::uint64_t tag, std::uint64_t w) {
    std::uint64_t x = (tag * 0x9E3779B97F4A7C15ULL) ^ (w * 0xBF58476D1CE4E5B9ULL);
    return x ^ (x >> 29);
  }
  static unsigned char pattern(std::uint64_t tag, std::size_t i) {
    return static_cast<unsigned char>(mix(tag, i / 8) >> ((i % 8) * 8));
  }

  void fill(const LiveBlock& lb) const {
    const std::size_t n = payload(lb);
    const std::size_t words = n / 8;
    for (std::size_t w = 0; w < words; ++w) {
      const std::uint64_t v = mix(lb.tag, w);
      std::memcpy(lb.ptr + w * 8, &v, 8);
    }
    for (std::size_t i = words * 8; i < n; ++i)
      lb.ptr[i] = pattern(lb.tag, i);
  }

  // Offset of the first byte of [0, n) that differs from the pattern, or n.
  static std::size_t first_mismatch(const unsigned char* p, std::uint64_t tag, std::size_t n) {
    const std::size_t words = n / 8;
    for (std::size_t w = 0; w < words; ++w) {
      std::uint64_t v;
      std::memcpy(&v, p + w * 8, 8);
      if (v != mix(tag, w)) {
        for (std::size_t i = w * 8;; ++i) {
          if (p[i] != pattern(tag, i)) return i;
        }
      }
    }
    for (std::size_t i = words * 8; i < n; ++i) {
      if (p[i] != pattern(tag, i)) return i;
    }
    return n;
  }

  std::string overlap(const unsigned char* b, std::size_t size) const {
    if (size == 0) return "";
    auto it = live_.upper_bound(key(b));
    if (it != live_.end() && key(b) + size > it->first)
      return msg("block overlaps the next live block", b, it->first - key(b));
    if (it != live_.begin()) {
      --it;
      const LiveBlock& prev = it->second;
      if (prev.size != 0 && key(prev.ptr) + prev.size > key(b))
        return msg("block overlaps the previous live block", b, key(b) - key(prev.ptr));
    }
    return "";
  }

  static std::string msg(const char* what, const void* p, std::size_t n) {
    std::ostringstream os;
    os << what << " (block " << p << ", " << n << ")";
    return os.str();
  }

  std::map<std::uintptr_t, LiveBlock> live_;               // by address, for overlap checks
  std::vector<std::uintptr_t> order_;                      // for O(1) random picks
  std::unordered_map<std::uintptr_t, std::size_t> index_;  // key -> position in order_
  std::size_t bytes_ = 0;
  std::uint64_t next_tag_ = 1;
  bool whole_ = false;
};

}  // namespace ctxalloc::testing
