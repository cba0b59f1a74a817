// Telling AddressSanitizer which parts of a TreeAllocator region the caller may touch:
// live blocks are addressable; free spans are poisoned except their tree node (first 32
// bytes) and their length footer (last 8 bytes), which the allocator itself reads. So a
// use after free inside the allocator's own memory is caught, not only in malloc's.
// Costs nothing outside ASan builds. The functions are the sources' (one definition, so
// that a file may use both a tree and an arena).
#pragma once

#include "ctxalloc/core/poison.h"
