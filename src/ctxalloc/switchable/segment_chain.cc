#include "ctxalloc/switchable/segment_chain.h"

namespace ctxalloc {

SegmentChain::~SegmentChain() {
  while (head_ != nullptr)
    remove(region_of(head_));
}

Block SegmentChain::add(std::size_t segments, SegmentSource* from) noexcept {
  SegmentSource* src = from != nullptr ? from : source_;
  const Block b = src->obtain(segments);
  if (b.ptr == nullptr) return b;
  if (!SegmentMap::register_range(b.ptr, b.size, tag_)) {
    src->release(b);
    return Block{};
  }
  auto* c = reinterpret_cast<Chunk*>(b.ptr);
  c->bytes = b.size;
  c->source = src;
  c->prev = nullptr;
  c->next = head_;
  if (head_ != nullptr) head_->prev = c;
  head_ = c;
  ++count_;
  return region_of(c);
}

void SegmentChain::remove(Block region) noexcept {
  auto* c = reinterpret_cast<Chunk*>(region.ptr - kHeader);
  if (c->prev != nullptr) c->prev->next = c->next;
  if (c->next != nullptr) c->next->prev = c->prev;
  if (head_ == c) head_ = c->next;
  --count_;
  const Block b{reinterpret_cast<std::byte*>(c), c->bytes};
  SegmentMap::unregister_range(b.ptr, b.size, tag_);
  c->source->release(b);
}

}  // namespace ctxalloc
