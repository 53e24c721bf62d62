#include "sources/rbd_cluster.h"

namespace backy::sources {

Status RbdConnection::Open(const RbdConfig& c) {
  store::RadosOptions options;
  options.conf_path = c.conf_path;
  options.client_id = c.client_id;
  options.keyring = c.keyring;
  options.connect_timeout_s = c.connect_timeout_s;
  options.op_timeout_s = c.op_timeout_s;
  auto pool = store::RadosPool::Connect(options, c.pool, c.rbd_namespace,
                                        RbdImageName(c));
  if (!pool.ok()) return pool.status();
  // Backups read each byte once and restores flush at the end: the cache
  // would only add copies. librbd reads the setting when an image opens.
  const int r = rados_conf_set((*pool)->cluster(), "rbd_cache", "false");
  if (r < 0) return RbdError(r, "setting rbd_cache", RbdImageName(c));
  pool_ = std::move(*pool);
  return Status::OK();
}

void CloseImage(rbd_image_t* image) {
  if (*image != nullptr) {
    rbd_close(*image);
    *image = nullptr;
  }
}

}  // namespace backy::sources
