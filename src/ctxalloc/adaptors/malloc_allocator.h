// Forwarding header: MallocAllocator moved to <ctxalloc/allocators/malloc_allocator.h> (it is an
// allocator, not an adaptor). Kept because this path was installed: programs built
// against an installed ctxalloc include it. New code includes the allocators/ header.
#pragma once

#include "ctxalloc/allocators/malloc_allocator.h"
