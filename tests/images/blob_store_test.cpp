#include "images/blob_store.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <ctime>
#include <filesystem>

#include <gtest/gtest.h>

#include "common/files.hpp"
#include "common/temp_dir.hpp"

namespace kiln {
namespace {

std::vector<std::string> list_directory(const std::string& dir) {
    std::vector<std::string> names;
    DIR* handle = ::opendir(dir.c_str());
    if (!handle) return names;
    while (dirent* entry = ::readdir(handle)) {
        std::string name = entry->d_name;
        if (name != "." && name != "..") names.push_back(name);
    }
    ::closedir(handle);
    return names;
}

class BlobStoreTest : public ::testing::Test {
protected:
    void SetUp() override {
        m_dir = std::move(*TempDir::create(default_temp_parent(), "kiln-blobs-test-"));
        auto store = BlobStore::open(m_dir.path() + "/store");
        ASSERT_TRUE(store) << store.error().message();
        m_store = std::make_unique<BlobStore>(std::move(*store));
    }
    TempDir m_dir;
    std::unique_ptr<BlobStore> m_store;
};

TEST_F(BlobStoreTest, PutStoresUnderTheContentDigest) {
    auto digest = m_store->put("hello blob");
    ASSERT_TRUE(digest) << digest.error().message();
    EXPECT_EQ(*digest, Digest::of_bytes("hello blob"));
    EXPECT_TRUE(m_store->contains(*digest));
    EXPECT_EQ(m_store->path(*digest), m_store->root() + "/blobs/sha256/" + digest->encoded());
    EXPECT_EQ(*m_store->read(*digest), "hello blob");
    EXPECT_EQ(*m_store->size(*digest), 10u);
}

TEST_F(BlobStoreTest, PutOfStoredBytesIsANoOp) {
    auto first = m_store->put("same");
    auto second = m_store->put("same");
    ASSERT_TRUE(first && second);
    EXPECT_EQ(*first, *second);
    EXPECT_EQ(list_directory(m_store->root() + "/blobs/sha256").size(), 1u);
    EXPECT_TRUE(list_directory(m_store->root() + "/ingest").empty());
}

TEST_F(BlobStoreTest, IngestStreamsAndVerifiesTheExpectedDigest) {
    auto ingest = m_store->begin();
    ASSERT_TRUE(ingest);
    ASSERT_TRUE(ingest->write("part one, "));
    ASSERT_TRUE(ingest->write("part two"));
    EXPECT_EQ(ingest->size(), 18u);
    auto digest = ingest->commit(Digest::of_bytes("part one, part two"));
    ASSERT_TRUE(digest) << digest.error().message();
    EXPECT_EQ(*m_store->read(*digest), "part one, part two");
}

TEST_F(BlobStoreTest, IngestWithTheWrongDigestIsRefusedAndLeavesNothing) {
    Digest expected = Digest::of_bytes("what the manifest promised");
    Digest actual = Digest::of_bytes("what the registry sent");
    auto ingest = m_store->begin();
    ASSERT_TRUE(ingest);
    ASSERT_TRUE(ingest->write("what the registry sent"));
    auto result = ingest->commit(expected);
    ASSERT_FALSE(result);
    EXPECT_NE(result.error().message().find(expected.str()), std::string::npos) << result.error().message();
    EXPECT_NE(result.error().message().find(actual.str()), std::string::npos) << result.error().message();
    // Nothing left behind even while the ingest object is still alive.
    EXPECT_TRUE(list_directory(m_store->root() + "/blobs/sha256").empty());
    EXPECT_TRUE(list_directory(m_store->root() + "/ingest").empty());
    EXPECT_FALSE(m_store->contains(actual));
}

TEST_F(BlobStoreTest, AbandonedIngestLeavesNothing) {
    {
        auto ingest = m_store->begin();
        ASSERT_TRUE(ingest);
        ASSERT_TRUE(ingest->write("never committed"));
    }
    EXPECT_TRUE(list_directory(m_store->root() + "/ingest").empty());
    EXPECT_TRUE(list_directory(m_store->root() + "/blobs/sha256").empty());
}

TEST_F(BlobStoreTest, IngestOutlivesTheStoreObjectItCameFrom) {
    auto ingest = BlobStore::open(m_store->root())->begin();
    ASSERT_TRUE(ingest);
    ASSERT_TRUE(ingest->write("late commit"));
    auto digest = ingest->commit();
    ASSERT_TRUE(digest) << digest.error().message();
    EXPECT_TRUE(m_store->contains(*digest));
}

// What a build killed with SIGKILL leaves in ingest/ is removed when the store is next opened; a blob that
// another process is still writing is not.
TEST_F(BlobStoreTest, OpeningRemovesPartialBlobsOfKilledWritersOnly) {
    auto live = m_store->begin();
    ASSERT_TRUE(live) << live.error().message();
    ASSERT_TRUE(live->write("still being written", 19));
    std::string orphan = m_dir.path() + "/store/ingest/blob.tmp-0123456789abcdef";
    ASSERT_TRUE(write_file_atomic(orphan, "left by a killed build"));
    timespec long_ago[2] = {{std::time(nullptr) - 3600, 0}, {std::time(nullptr) - 3600, 0}};
    ASSERT_EQ(::utimensat(AT_FDCWD, orphan.c_str(), long_ago, 0), 0);
    for (const auto& entry : std::filesystem::directory_iterator(m_dir.path() + "/store/ingest"))
        ASSERT_EQ(::utimensat(AT_FDCWD, entry.path().c_str(), long_ago, 0), 0);

    auto reopened = BlobStore::open(m_dir.path() + "/store");
    ASSERT_TRUE(reopened) << reopened.error().message();
    size_t left = 0;
    for (const auto& entry : std::filesystem::directory_iterator(m_dir.path() + "/store/ingest")) {
        EXPECT_NE(entry.path().string(), orphan);
        ++left;
    }
    EXPECT_EQ(left, 1u) << "the live writer's file must stay";
    auto digest = live->commit();
    ASSERT_TRUE(digest) << digest.error().message();
    EXPECT_TRUE(reopened->contains(*digest));
}

TEST_F(BlobStoreTest, ReadOfAMissingBlobNamesIt) {
    Digest missing = Digest::of_bytes("absent");
    auto bytes = m_store->read(missing);
    ASSERT_FALSE(bytes);
    EXPECT_NE(bytes.error().message().find(missing.encoded()), std::string::npos) << bytes.error().message();
}

}  // namespace
}  // namespace kiln
