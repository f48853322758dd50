// The ring engine: one io_uring per JS thread (per N-API environment), its
// completions reaped on that thread by a uv_poll on the ring's eventfd, its
// submissions of one loop iteration sent in one io_uring_enter.
#pragma once

#include <node_api.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace untorn {

enum class RingOp : uint8_t { kWrite, kRead, kFsync, kFdatasync };

// One SQE's worth of work.
struct RingEntry {
  RingOp op;
  int fd;
  void* data;
  size_t length;
  int64_t position;
  int rwflags;
};

class RingEngine;

// The engine of this environment, made on first use; null with *error set
// (-errno of io_uring_setup or of what followed) where no ring can be had.
RingEngine* RingEngineFor(napi_env env, int* error);

// The io_uring_setup flags the ring runs with.
unsigned RingSetupFlags(const RingEngine* engine);

// The most operations that were in flight at once since the last call.
unsigned RingTakePeak(RingEngine* engine);

// Queues entries as one request and returns its promise. `keep` holds the
// values (buffers) to keep alive until every entry's CQE has arrived. With
// `datasync_after`, an fdatasync of the first entry's fd goes down once all
// entries have succeeded. The promise resolves to the result (bytes or
// -errno) when `as_array` is false and there is one entry, else to an array
// of the per-entry results, the fdatasync's last where it was issued.
napi_value RingSubmit(RingEngine* engine, napi_env env, std::vector<RingEntry> entries, std::vector<napi_value> keep,
                      bool datasync_after, bool as_array);

}  // namespace untorn
