// Writes classic libpcap files (not pcapng): the 24-byte file header, then per frame a
// 16-byte record header and the bytes. Fields are written little-endian whatever the
// host, so the same frames give the same file everywhere; readers learn the byte order
// from the magic number. Link type Ethernet, microsecond timestamps, snap length 65535.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <span>
#include <string>

namespace ctxgen {

inline constexpr std::uint32_t kPcapMagicMicros = 0xA1B2C3D4;
inline constexpr std::uint32_t kPcapSnaplen = 65535;
inline constexpr std::uint32_t kPcapLinkEthernet = 1;
inline constexpr std::size_t kPcapFileHeader = 24;
inline constexpr std::size_t kPcapRecordHeader = 16;

/// The file header's 24 bytes.
void encode_pcap_file_header(std::byte out[kPcapFileHeader]);
/// A record header's 16 bytes for a frame of `len` bytes captured whole at `ts_us`
/// microseconds since the epoch.
void encode_pcap_record_header(std::byte out[kPcapRecordHeader], std::uint64_t ts_us,
                               std::uint32_t len);

/// A pcap file being written. Errors (open, short write, close) are reported with the
/// file's name and errno's text; after one, every further write fails.
class PcapWriter {
 public:
  PcapWriter() = default;
  PcapWriter(const PcapWriter&) = delete;
  PcapWriter& operator=(const PcapWriter&) = delete;
  ~PcapWriter();

  /// Creates (truncates) `path` and writes the file header.
  bool open(const std::string& path, std::string* error);
  /// Appends one frame; frames longer than the snap length are refused.
  bool write(std::uint64_t ts_us, std::span<const std::byte> frame, std::string* error);
  /// Flushes and closes; the file is complete only when this returns true.
  bool close(std::string* error);

 private:
  bool fail(const char* what, std::string* error);

  std::FILE* file_ = nullptr;
  std::string path_;
  bool failed_ = false;
};

}  // namespace ctxgen
