// TLS for the NBD server, on GnuTLS (the library of qemu, nbdkit, libnbd).
//
// TlsCredentials holds the server's x509 and/or PSK credentials, loaded and
// checked once at startup, so that a bad file is a startup error naming it
// and never a handshake failure later. TlsSession is one connection's TLS
// state over its non-blocking socket: no call blocks; each returns kWantRead
// or kWantWrite when the socket is not ready, and the caller waits for that
// and calls again. Only this file's .cc includes GnuTLS.
//
// Thread-safety: TlsCredentials is immutable after Load() and shared by every
// session. A TlsSession is used from one thread at a time (the I/O thread).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "nbd/server.h"
#include "store/status.h"

struct gnutls_session_int;

namespace backy::nbd {

class TlsCredentials {
 public:
  // Loads what `o` names: certificates_dir/{server-cert,server-key}.pem
  // (and ca-cert.pem, needed with verify_peer; ca-crl.pem if present) and
  // the PSK file. Secrets (the key, the PSK file) must be regular files, not
  // symbolic links, and not accessible by others. Every error names the file.
  // REQUIRES: o.certificates_dir or o.psk_file is not empty.
  static Result<std::unique_ptr<TlsCredentials>> Load(const TlsOptions& o);

  TlsCredentials(const TlsCredentials&) = delete;
  TlsCredentials& operator=(const TlsCredentials&) = delete;
  ~TlsCredentials();  // wipes the PSK keys

  // "x509 (client certificates verified), PSK (2 users)": for the log.
  std::string Describe() const;

 private:
  friend class TlsSession;
  friend struct TlsCallbacks;
  struct Impl;
  explicit TlsCredentials(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

class TlsSession {
 public:
  // Largest plaintext a TLS record carries: Send() takes at most this much.
  static constexpr size_t kMaxRecord = 16384;

  enum class Io {
    kOk,
    kWantRead,   // wait until the socket is readable, then call again
    kWantWrite,  // wait until it is writable, then call again
    kEof,        // the peer closed the connection (Recv only)
    kError,      // see error()
  };

  // A server session over `fd` (non-blocking), using `creds`, which must
  // outlive it. The caller keeps owning `fd`.
  static Result<std::unique_ptr<TlsSession>> Create(const TlsCredentials& creds,
                                                    int fd);

  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;
  ~TlsSession();

  // Runs the handshake as far as the socket allows; kOk once it is done
  // (and, with verify_peer, the client certificate verified).
  Io Handshake();
  // Reads up to `cap` decrypted bytes into `buf`; sets *got on kOk (> 0).
  Io Recv(uint8_t* buf, size_t cap, size_t* got);
  // Sends `len` bytes (1 to kMaxRecord) as one record; *sent (> 0) on kOk.
  // After kWantRead/kWantWrite the next call must pass the same buf and len.
  Io Send(const uint8_t* buf, size_t len, size_t* sent);
  // Sends close_notify if the socket takes it at once; never waits.
  void Bye();

  // Why the last call returned kError (GnuTLS's message; for a refused
  // certificate, the verification result).
  const std::string& error() const { return error_; }
  // After the handshake: the PSK username, or the common name of a verified
  // client certificate; empty otherwise (x509 without verify_peer).
  const std::string& identity() const { return identity_; }
  // After a failed handshake: the credential the client offered and was
  // refused (a PSK username, or the subject of its certificate), if known.
  const std::string& refused_identity() const { return refused_identity_; }

 private:
  TlsSession(const TlsCredentials& creds, gnutls_session_int* session);
  Io Fail(int rc);
  void NoteRefusedCertificate();
  friend struct TlsCallbacks;  // GnuTLS's callbacks, in tls.cc

  const TlsCredentials& creds_;
  gnutls_session_int* session_;
  std::string error_;
  std::string identity_;
  std::string refused_identity_;
  std::string psk_user_;  // as asked for in the PSK callback
  bool handshake_done_ = false;
};

}  // namespace backy::nbd
