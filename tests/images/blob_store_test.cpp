#include "images/blob_store.hpp"

#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
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

// A layer kiln writes is hashed by its writer: the ingest takes the digest it is given, and wants one.
TEST_F(BlobStoreTest, AnIngestWhoseWriterHashesIsStoredUnderTheWritersDigest) {
    auto ingest = m_store->begin(IngestDigest::from_writer);
    ASSERT_TRUE(ingest);
    ASSERT_TRUE(ingest->write("layer bytes"));
    auto digest = ingest->commit(Digest::of_bytes("layer bytes"));
    ASSERT_TRUE(digest) << digest.error().message();
    EXPECT_EQ(*digest, Digest::of_bytes("layer bytes"));
    EXPECT_EQ(*m_store->read(*digest), "layer bytes");

    auto unnamed = m_store->begin(IngestDigest::from_writer);
    ASSERT_TRUE(unnamed);
    ASSERT_TRUE(unnamed->write("no digest given"));
    EXPECT_FALSE(unnamed->commit());
    EXPECT_FALSE(m_store->contains(Digest::of_bytes("no digest given")));
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
    pid_t child = ::fork();
    if (child == 0) {
        auto killed = m_store->begin();
        if (killed && killed->write("half a blob", 11)) ::raise(SIGKILL);
        ::_exit(1);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "the writer was not killed mid-blob";
    std::string ingest = m_dir.path() + "/store/ingest";
    ASSERT_EQ(list_directory(ingest).size(), 2u);
    // Older than the moment between a writer's create and its lock, which the sweep leaves alone.
    timespec long_ago[2] = {{std::time(nullptr) - 3600, 0}, {std::time(nullptr) - 3600, 0}};
    for (const std::string& name : list_directory(ingest))
        ASSERT_EQ(::utimensat(AT_FDCWD, (ingest + "/" + name).c_str(), long_ago, 0), 0);

    auto reopened = BlobStore::open(m_dir.path() + "/store");
    ASSERT_TRUE(reopened) << reopened.error().message();
    EXPECT_EQ(list_directory(ingest).size(), 1u) << "the live writer's file must stay, the killed one's go";
    auto digest = live->commit();
    ASSERT_TRUE(digest) << digest.error().message();
    EXPECT_TRUE(reopened->contains(*digest));
    EXPECT_TRUE(list_directory(ingest).empty());
}

// Pods sharing a volume write into one store at once, often the same blobs: every writer succeeds and the
// blob is whole.
TEST_F(BlobStoreTest, ProcessesWritingTheSameBlobAtOnceAllSucceed) {
    std::string bytes(4 << 20, '\0');
    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>((i * 2654435761u) >> 24);
    Digest expected = Digest::of_bytes(bytes);
    std::vector<pid_t> children;
    for (int i = 0; i < 4; ++i) {
        pid_t child = ::fork();
        if (child == 0) {
            auto store = BlobStore::open(m_dir.path() + "/store");
            if (!store) ::_exit(2);
            for (int round = 0; round < 5; ++round) {
                auto ingest = store->begin();
                if (!ingest) ::_exit(3);
                for (size_t at = 0; at < bytes.size(); at += 65536)
                    if (!ingest->write(bytes.data() + at, std::min<size_t>(65536, bytes.size() - at))) ::_exit(4);
                if (!ingest->commit(expected)) ::_exit(5);
            }
            ::_exit(0);
        }
        children.push_back(child);
    }
    for (pid_t child : children) {
        int status = 0;
        ASSERT_EQ(::waitpid(child, &status, 0), child);
        EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
    }
    auto stored = m_store->read(expected, 8 << 20);
    ASSERT_TRUE(stored) << stored.error().message();
    EXPECT_EQ(Digest::of_bytes(*stored), expected);
    EXPECT_TRUE(list_directory(m_dir.path() + "/store/ingest").empty());
}

TEST_F(BlobStoreTest, ReadOfAMissingBlobNamesIt) {
    Digest missing = Digest::of_bytes("absent");
    auto bytes = m_store->read(missing);
    ASSERT_FALSE(bytes);
    EXPECT_NE(bytes.error().message().find(missing.encoded()), std::string::npos) << bytes.error().message();
}

}  // namespace
}  // namespace kiln
