// RbdSink: the restore target "rbd:POOL/IMAGE" — writes a revision into a
// Ceph RBD image through sources::RbdImageWriter. Creates the image (or,
// with --force, overwrites an existing one), writes only non-zero chunks
// into a new image, and keeps several writes in flight on its own threads
// with a bounded number of buffers. The cluster is reached as
// RestoreOptions::ceph says, else through $CEPH_CONF and $CEPH_ARGS. Used by
// one restore thread (RestoreSink's contract); the writer threads are
// internal.
#pragma once

#include <memory>
#include <string>

#include "backup/restore.h"

namespace backy::backup {

// Opens the sink for `spec` (POOL/IMAGE or POOL/NAMESPACE/IMAGE, without
// the "rbd:" prefix). InvalidArgument for a malformed spec. Connecting and
// creating the image happen in RestoreSink::Open(): InvalidArgument there
// when the image exists and !options.force, NotFound for a missing pool.
// A failed or aborted restore removes an image the sink created.
Result<std::unique_ptr<RestoreSink>> OpenRbdSink(const std::string& spec,
                                                 const RestoreOptions& options);

}  // namespace backy::backup
