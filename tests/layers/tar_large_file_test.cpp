// Entries past ustar's 8 GiB size limit: the header must carry a PAX size record, reading and extracting it
// must give the same file back, and the layer writer must store such a file from a rootfs. Everything stays
// sparse on disk, so the test costs CPU, not 9 GiB.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <vector>

#include "common/fd.hpp"
#include "common/strings.hpp"
#include "common/temp_dir.hpp"
#include "layers/extract.hpp"
#include "layers/layer_writer.hpp"
#include "layers/tar_reader.hpp"
#include "layers/tar_writer.hpp"
#include "tests/support/tar_fixtures.hpp"

namespace kiln {
namespace {

constexpr std::int64_t k_size = (9LL << 30) + 5;  // past ustar's 077777777777 bytes
constexpr size_t k_chunk = 1 << 20;

// Writes to a file, seeking over whole blocks of zeros so that they stay holes.
class SparseFileWriter final : public Writer {
public:
    explicit SparseFileWriter(int fd) : m_fd(fd) {}
    using Writer::write;
    Status write(const char* data, size_t size) override {
        bool zeros = size > 0 && data[0] == 0 && std::memcmp(data, data + 1, size - 1) == 0;
        if (!zeros && ::pwrite(m_fd, data, size, m_offset) != static_cast<ssize_t>(size))
            return fail_errno("pwrite");
        m_offset += static_cast<off_t>(size);
        return {};
    }
    Status finish() {
        if (::ftruncate(m_fd, m_offset) != 0) return fail_errno("ftruncate");
        return {};
    }

private:
    int m_fd;
    off_t m_offset = 0;
};

// The tar is written once for the suite: 9 GiB through libarchive takes seconds even when nothing hits disk.
class TarLargeFileTest : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        s_dir = new TempDir(std::move(*TempDir::create(default_temp_parent(), "kiln-large-")));
        s_tar_path = new std::string(s_dir->path() + "/big.tar");
        s_written = write_tar(*s_tar_path);
    }
    static void TearDownTestSuite() {
        delete s_tar_path;
        delete s_dir;
    }
    void SetUp() override {
        ASSERT_TRUE(s_written) << "the large tar could not be written";
        m_tar_path = *s_tar_path;
        m_root = s_dir->path() + "/root-" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    }

    // One entry of k_size bytes: "head", zeros, "tail".
    static bool write_tar(const std::string& path) {
        UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
        if (!fd) return false;
        SparseFileWriter out(fd.get());
        TarWriter tar(out);
        TarEntry entry;
        entry.name = "images/disk.img";
        entry.mode = 0640;
        entry.uid = 1000;
        entry.gid = 1000;
        entry.mtime = {1'700'000'000, 0};
        entry.size = k_size;
        if (!tar.write_header(entry)) return false;
        std::vector<char> chunk(k_chunk, '\0');
        for (std::int64_t written = 0; written < k_size;) {
            size_t n = static_cast<size_t>(std::min<std::int64_t>(k_size - written, k_chunk));
            std::fill(chunk.begin(), chunk.end(), '\0');
            if (written == 0) std::memcpy(chunk.data(), "head", 4);
            if (written + static_cast<std::int64_t>(n) == k_size)
                std::memcpy(chunk.data() + n - 4, "tail", 4);
            if (!tar.write_data(chunk.data(), n)) return false;
            written += static_cast<std::int64_t>(n);
        }
        return tar.finish() && out.finish();
    }

    std::string m_tar_path;
    std::string m_root;
    static inline TempDir* s_dir = nullptr;
    static inline std::string* s_tar_path = nullptr;
    static inline bool s_written = false;
};

TEST_F(TarLargeFileTest, HeaderCarriesThePaxSizeRecord) {
    UniqueFd fd(::open(m_tar_path.c_str(), O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(fd);
    std::string head(2048, '\0');
    ASSERT_EQ(::pread(fd.get(), head.data(), head.size(), 0), static_cast<ssize_t>(head.size()));
    EXPECT_NE(head.find(str_cat(" size=", k_size, "\n")), std::string::npos) << "no PAX size record";
    // The ustar size field of the entry's own header (the second 512-byte block's, after the PAX header)
    // cannot hold the size and is not asked to: libarchive stores what fits and the PAX record wins.
    EXPECT_EQ(head[156], 'x') << "the first header is a PAX extended header";
}

TEST_F(TarLargeFileTest, ReadsBackWithItsSizeAndData) {
    UniqueFd fd(::open(m_tar_path.c_str(), O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(fd);
    FdReader source(fd.get(), m_tar_path);
    TarReader reader(source);
    TarEntry entry;
    auto more = reader.next(entry);
    ASSERT_TRUE(more && *more);
    EXPECT_EQ(entry.name, "images/disk.img");
    EXPECT_EQ(entry.size, k_size);
    EXPECT_EQ(entry.uid, 1000);
    std::int64_t total = 0;
    std::string first, last;
    while (true) {
        auto block = reader.read_block();
        ASSERT_TRUE(block) << block.error().message();
        if (!*block) break;
        if ((*block)->offset == 0) first.assign((*block)->data, 4);
        if ((*block)->offset + static_cast<std::int64_t>((*block)->size) == k_size)
            last.assign((*block)->data + (*block)->size - 4, 4);
        total += static_cast<std::int64_t>((*block)->size);
    }
    EXPECT_EQ(total, k_size);
    EXPECT_EQ(first, "head");
    EXPECT_EQ(last, "tail");
    more = reader.next(entry);
    ASSERT_TRUE(more);
    EXPECT_FALSE(*more);
}

TEST_F(TarLargeFileTest, ExtractsToAFileOfTheSameSize) {
    std::filesystem::create_directory(m_root);
    auto root = RootFs::open(m_root);
    ASSERT_TRUE(root);
    UniqueFd fd(::open(m_tar_path.c_str(), O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(fd);
    FdReader source(fd.get(), m_tar_path);
    auto stats = apply_layer(*root, source, {.layer_name = "sha256:large"});
    ASSERT_TRUE(stats) << stats.error().message();
    std::string path = m_root + "/images/disk.img";
    struct stat st;
    ASSERT_EQ(::lstat(path.c_str(), &st), 0);
    EXPECT_EQ(st.st_size, k_size);
    EXPECT_LT(st.st_blocks * 512, 64 << 20) << "the zeros were written out";
    UniqueFd extracted(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    char head[4], tail[4];
    ASSERT_EQ(::pread(extracted.get(), head, 4, 0), 4);
    ASSERT_EQ(::pread(extracted.get(), tail, 4, k_size - 4), 4);
    EXPECT_EQ(std::string(head, 4), "head");
    EXPECT_EQ(std::string(tail, 4), "tail");
}

// Keeps the first and the last bytes of a stream and counts the rest, so that a 9 GiB layer costs no memory.
class EndsWriter final : public Writer {
public:
    using Writer::write;
    Status write(const char* data, size_t size) override {
        size_t to_head = std::min(size, k_kept - std::min(k_kept, m_head.size()));
        m_head.append(data, to_head);
        m_tail.append(data, size);
        if (m_tail.size() > 2 * k_kept) m_tail.erase(0, m_tail.size() - k_kept);
        m_total += static_cast<std::int64_t>(size);
        return {};
    }
    // The bytes at [offset, offset + size), which must lie in the kept head or tail.
    std::string at(std::int64_t offset, size_t size) const {
        if (offset + static_cast<std::int64_t>(size) <= static_cast<std::int64_t>(m_head.size()))
            return m_head.substr(static_cast<size_t>(offset), size);
        std::int64_t tail_start = m_total - static_cast<std::int64_t>(m_tail.size());
        if (offset < tail_start) return "<not kept>";
        return m_tail.substr(static_cast<size_t>(offset - tail_start), size);
    }
    const std::string& head() const { return m_head; }
    std::int64_t total() const { return m_total; }

private:
    static constexpr size_t k_kept = 64 << 10;
    std::string m_head;
    std::string m_tail;
    std::int64_t m_total = 0;
};

TEST_F(TarLargeFileTest, LayerWriterStoresASparseFileOver8GiB) {
    std::filesystem::create_directory(m_root);
    {
        UniqueFd fd(::open((m_root + "/disk.img").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0640));
        ASSERT_TRUE(fd);
        ASSERT_EQ(::pwrite(fd.get(), "head", 4, 0), 4);
        ASSERT_EQ(::pwrite(fd.get(), "tail", 4, k_size - 4), 4);
    }
    auto root = RootFs::open(m_root);
    ASSERT_TRUE(root);
    EndsWriter out;
    auto written = write_layer(*root, {{LayerEntryKind::path, "disk.img"}}, out,
                               {.compression = {.compression = Compression::none}});
    ASSERT_TRUE(written) << written.error().message();

    EXPECT_NE(out.head().find(str_cat(" size=", k_size, "\n")), std::string::npos) << "no PAX size record";
    // The data starts after the entry's own ustar header: the block named disk.img with a regular typeflag.
    std::int64_t data_start = -1;
    for (size_t block = 0; block + 512 <= out.head().size() && data_start < 0; block += 512)
        if (out.head().compare(block, 9, std::string("disk.img\0", 9)) == 0 && out.head()[block + 156] == '0')
            data_start = static_cast<std::int64_t>(block + 512);
    ASSERT_GE(data_start, 0) << "no ustar header for disk.img";
    EXPECT_EQ(out.at(data_start, 4), "head");
    EXPECT_EQ(out.at(data_start + k_size - 4, 4), "tail");
    std::int64_t padded = (k_size + 511) / 512 * 512;
    EXPECT_GE(out.total(), data_start + padded + 1024) << "the data or the end-of-archive blocks are short";
    EXPECT_EQ(static_cast<std::int64_t>(written->uncompressed_size), out.total());
}

}  // namespace
}  // namespace kiln
