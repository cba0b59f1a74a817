#include "pcap_writer.h"

#include <cerrno>
#include <cstring>

namespace ctxgen {
namespace {

void put_le32(std::byte* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i)
    p[i] = static_cast<std::byte>(v >> (8 * i));
}
void put_le16(std::byte* p, std::uint16_t v) {
  p[0] = static_cast<std::byte>(v);
  p[1] = static_cast<std::byte>(v >> 8);
}

}  // namespace

void encode_pcap_file_header(std::byte out[kPcapFileHeader]) {
  put_le32(out, kPcapMagicMicros);
  put_le16(out + 4, 2);  // version 2.4
  put_le16(out + 6, 4);
  put_le32(out + 8, 0);   // thiszone: timestamps are UTC
  put_le32(out + 12, 0);  // sigfigs
  put_le32(out + 16, kPcapSnaplen);
  put_le32(out + 20, kPcapLinkEthernet);
}

void encode_pcap_record_header(std::byte out[kPcapRecordHeader], std::uint64_t ts_us,
                               std::uint32_t len) {
  put_le32(out, static_cast<std::uint32_t>(ts_us / 1'000'000));
  put_le32(out + 4, static_cast<std::uint32_t>(ts_us % 1'000'000));
  put_le32(out + 8, len);   // captured length
  put_le32(out + 12, len);  // original length: nothing is cut
}

PcapWriter::~PcapWriter() {
  if (file_ != nullptr) std::fclose(file_);
}

bool PcapWriter::fail(const char* what, std::string* error) {
  failed_ = true;
  if (error != nullptr) *error = std::string(what) + " " + path_ + ": " + std::strerror(errno);
  return false;
}

bool PcapWriter::open(const std::string& path, std::string* error) {
  path_ = path;
  failed_ = false;
  file_ = std::fopen(path.c_str(), "wb");
  if (file_ == nullptr) return fail("cannot create", error);
  // Big stdio buffer: the generator writes many small records.
  std::setvbuf(file_, nullptr, _IOFBF, 1 << 20);
  std::byte header[kPcapFileHeader];
  encode_pcap_file_header(header);
  if (std::fwrite(header, 1, sizeof header, file_) != sizeof header) {
    return fail("cannot write", error);
  }
  return true;
}

bool PcapWriter::write(std::uint64_t ts_us, std::span<const std::byte> frame, std::string* error) {
  if (file_ == nullptr || failed_) {
    if (error != nullptr) *error = "pcap writer for '" + path_ + "' is not open";
    return false;
  }
  if (frame.size() > kPcapSnaplen) {
    errno = EMSGSIZE;
    return fail("frame longer than the snap length for", error);
  }
  std::byte header[kPcapRecordHeader];
  encode_pcap_record_header(header, ts_us, static_cast<std::uint32_t>(frame.size()));
  if (std::fwrite(header, 1, sizeof header, file_) != sizeof header ||
      std::fwrite(frame.data(), 1, frame.size(), file_) != frame.size()) {
    return fail("cannot write", error);
  }
  return true;
}

bool PcapWriter::close(std::string* error) {
  if (file_ == nullptr) return !failed_;
  std::FILE* f = file_;
  file_ = nullptr;
  const bool flushed = std::fflush(f) == 0;
  const bool closed = std::fclose(f) == 0;
  if (!flushed || !closed) return fail("cannot finish", error);
  return !failed_;
}

}  // namespace ctxgen
