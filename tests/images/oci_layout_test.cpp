#include "images/oci_layout.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/files.hpp"
#include "common/temp_dir.hpp"
#include "image_fixtures.hpp"

namespace kiln {
namespace {

using testing::find_tool;
using testing::run;

class OciLayoutTest : public ::testing::Test {
protected:
    void SetUp() override {
        m_dir = std::move(*TempDir::create(default_temp_parent(), "kiln-oci-layout-test-"));
        m_store = std::make_unique<BlobStore>(std::move(*BlobStore::open(m_dir.path() + "/store")));
        m_layout = m_dir.path() + "/layout";
    }

    ImageDocuments documents_of(const Image& image) {
        auto documents = write_image_documents(image, ManifestFormat::oci, *m_store);
        EXPECT_TRUE(documents) << documents.error().message();
        return std::move(*documents);
    }

    // `skopeo inspect oci:<layout>:<ref>` as JSON; null when skopeo fails.
    nlohmann::json skopeo_inspect(const std::string& ref) {
        ProcessResult result = run({"skopeo", "inspect", "oci:" + m_layout + ":" + ref});
        EXPECT_EQ(result.exit_code, 0) << result.stderr_bytes;
        if (result.exit_code != 0) return nullptr;
        return nlohmann::json::parse(result.stdout_bytes);
    }

    TempDir m_dir;
    std::unique_ptr<BlobStore> m_store;
    std::string m_layout;
};

std::vector<std::string> layer_digests(const Image& image) {
    std::vector<std::string> digests;
    for (const LayerPtr& layer : image.layers()) digests.push_back(layer->descriptor().digest.str());
    return digests;
}

ino_t inode_of(const std::string& path) {
    struct stat st{};
    ::stat(path.c_str(), &st);
    return st.st_ino;
}

TEST_F(OciLayoutTest, WritesTheLayoutFilesAndTheNamedIndexEntry) {
    Image image = testing::make_test_image(*m_store);
    ImageDocuments documents = documents_of(image);
    auto entry = write_oci_layout(m_layout, image, documents, "v1");
    ASSERT_TRUE(entry) << entry.error().message();
    EXPECT_EQ(*read_file(m_layout + "/oci-layout"), R"({"imageLayoutVersion":"1.0.0"})");
    auto index = read_oci_layout_index(m_layout);
    ASSERT_TRUE(index) << index.error().message();
    ASSERT_EQ(index->manifests.size(), 1u);
    EXPECT_EQ(index->manifests[0], *entry);
    EXPECT_EQ(entry->digest, documents.manifest.digest);
    EXPECT_EQ(entry->annotations.at(std::string(k_ref_name_annotation)), "v1");
    ASSERT_TRUE(entry->platform.has_value());
    EXPECT_EQ(entry->platform->str(), "linux/amd64");
    for (const Digest& digest : {documents.config.digest, documents.manifest.digest})
        EXPECT_TRUE(path_exists(m_layout + "/blobs/sha256/" + digest.encoded())) << digest.str();
}

TEST_F(OciLayoutTest, SkopeoReadsTheManifestAndLayers) {
    if (find_tool("skopeo").empty()) GTEST_SKIP() << "skopeo is not installed";
    Image image = testing::make_test_image(*m_store);
    ImageDocuments documents = documents_of(image);
    ASSERT_TRUE(write_oci_layout(m_layout, image, documents, "latest"));
    nlohmann::json inspected = skopeo_inspect("latest");
    ASSERT_FALSE(inspected.is_null());
    EXPECT_EQ(inspected["Digest"], documents.manifest.digest.str());
    EXPECT_EQ(inspected["Layers"].get<std::vector<std::string>>(), layer_digests(image));
    EXPECT_EQ(inspected["Architecture"], "amd64");
    EXPECT_EQ(inspected["Labels"]["org.example.test"], "yes");
}

TEST_F(OciLayoutTest, UmociUnpacksTheFilesWithTheirContent) {
    if (find_tool("umoci").empty()) GTEST_SKIP() << "umoci is not installed";
    Image image = testing::make_test_image(*m_store);
    ASSERT_TRUE(write_oci_layout(m_layout, image, documents_of(image), "latest"));
    std::string bundle = m_dir.path() + "/bundle";
    std::vector<std::string> argv = {"umoci", "unpack"};
    if (::geteuid() != 0) argv.push_back("--rootless");
    argv.insert(argv.end(), {"--image", m_layout + ":latest", bundle});
    ProcessResult result = run(argv);
    ASSERT_EQ(result.exit_code, 0) << result.stderr_bytes;
    std::string rootfs = bundle + "/rootfs/";
    for (const auto& files : {testing::first_layer_files(), testing::second_layer_files()}) {
        for (const testing::TestFile& file : files) {
            auto content = read_file(rootfs + file.path);
            ASSERT_TRUE(content) << content.error().message();
            EXPECT_EQ(*content, file.content) << file.path;
            struct stat st{};
            ASSERT_EQ(::stat((rootfs + file.path).c_str(), &st), 0);
            EXPECT_EQ(st.st_mode & 07777, file.mode) << file.path;
        }
    }
}

TEST_F(OciLayoutTest, ASecondTagKeepsTheFirstAndTheSameTagIsReplaced) {
    Image first = testing::make_test_image(*m_store);
    Image second = Image::empty(Platform{.os = "linux", .architecture = "arm64"})
                       .with_layer(first.layers()[1], History{.created_by = "COPY app /app"});
    ImageDocuments first_documents = documents_of(first);
    ImageDocuments second_documents = documents_of(second);
    ASSERT_TRUE(write_oci_layout(m_layout, first, first_documents, "one"));
    ASSERT_TRUE(write_oci_layout(m_layout, second, second_documents, "two"));
    auto index = read_oci_layout_index(m_layout);
    ASSERT_TRUE(index);
    ASSERT_EQ(index->manifests.size(), 2u);
    EXPECT_EQ(index->manifests[0].digest, first_documents.manifest.digest);
    EXPECT_EQ(index->manifests[1].digest, second_documents.manifest.digest);
    if (!find_tool("skopeo").empty()) {
        EXPECT_EQ(skopeo_inspect("one")["Digest"], first_documents.manifest.digest.str());
        EXPECT_EQ(skopeo_inspect("two")["Digest"], second_documents.manifest.digest.str());
    }

    // Writing "one" again moves the name to the new image, in place.
    ASSERT_TRUE(write_oci_layout(m_layout, second, second_documents, "one"));
    index = read_oci_layout_index(m_layout);
    ASSERT_EQ(index->manifests.size(), 2u);
    EXPECT_EQ(index->manifests[0].annotations.at(std::string(k_ref_name_annotation)), "one");
    EXPECT_EQ(index->manifests[0].digest, second_documents.manifest.digest);
}

TEST_F(OciLayoutTest, HardlinksLayerFilesOnTheSameFilesystem) {
    Image image = testing::make_test_image(*m_store);
    ASSERT_TRUE(write_oci_layout(m_layout, image, documents_of(image), ""));
    for (const LayerPtr& layer : image.layers()) {
        const Digest& digest = layer->descriptor().digest;
        EXPECT_EQ(inode_of(m_layout + "/blobs/sha256/" + digest.encoded()), inode_of(m_store->path(digest)));
    }
}

TEST_F(OciLayoutTest, CopiesLayerFilesAcrossFilesystems) {
    struct stat shm{}, here{};
    if (::stat("/dev/shm", &shm) != 0 || ::stat(m_dir.path().c_str(), &here) != 0 || shm.st_dev == here.st_dev)
        GTEST_SKIP() << "needs /dev/shm on a filesystem other than " << m_dir.path();
    auto shm_dir = TempDir::create("/dev/shm", "kiln-oci-layout-test-");
    ASSERT_TRUE(shm_dir);
    BlobStore shm_store = std::move(*BlobStore::open(shm_dir->path()));
    Image image = testing::make_test_image(shm_store);
    auto documents = write_image_documents(image, ManifestFormat::oci, shm_store);
    ASSERT_TRUE(documents);
    ASSERT_TRUE(write_oci_layout(m_layout, image, *documents, "copied"));
    for (const LayerPtr& layer : image.layers()) {
        const Digest& digest = layer->descriptor().digest;
        std::string copy = m_layout + "/blobs/sha256/" + digest.encoded();
        EXPECT_EQ(Digest::of_bytes(*read_file(copy)), digest);
        EXPECT_NE(inode_of(copy), inode_of(shm_store.path(digest)));
    }
}

TEST_F(OciLayoutTest, ALayerThatFailsVerificationIsNotPublished) {
    Image good = testing::make_test_image(*m_store);
    ASSERT_TRUE(write_oci_layout(m_layout, good, documents_of(good), "good"));
    std::string index_before = *read_file(m_layout + "/index.json");
    const LayerPtr& real = good.layers()[0];
    LayerPtr corrupt = testing::make_bytes_layer(real->descriptor(), real->diff_id(), "not the layer");
    Image bad = Image::empty(Platform{.os = "linux", .architecture = "amd64"}).with_layer(corrupt, {});
    ::unlink((m_layout + "/blobs/sha256/" + real->descriptor().digest.encoded()).c_str());
    auto result = write_oci_layout(m_layout, bad, documents_of(bad), "bad");
    ASSERT_FALSE(result);
    EXPECT_NE(result.error().message().find(real->descriptor().digest.str()), std::string::npos)
        << result.error().message();
    EXPECT_FALSE(path_exists(m_layout + "/blobs/sha256/" + real->descriptor().digest.encoded()));
    EXPECT_EQ(*read_file(m_layout + "/index.json"), index_before);
}

TEST_F(OciLayoutTest, RefusesANonEmptyDirectoryThatIsNotALayout) {
    ASSERT_TRUE(make_directories(m_layout));
    ASSERT_TRUE(write_file_atomic(m_layout + "/notes.txt", "mine"));
    Image image = testing::make_test_image(*m_store);
    auto result = write_oci_layout(m_layout, image, documents_of(image), "latest");
    ASSERT_FALSE(result);
    EXPECT_NE(result.error().message().find("not an OCI image layout"), std::string::npos) << result.error().message();
    EXPECT_FALSE(path_exists(m_layout + "/oci-layout"));
    EXPECT_FALSE(path_exists(m_layout + "/blobs"));
}

TEST_F(OciLayoutTest, AnEmptyExistingDirectoryBecomesALayout) {
    ASSERT_TRUE(make_directories(m_layout));
    Image image = testing::make_test_image(*m_store);
    ASSERT_TRUE(write_oci_layout(m_layout, image, documents_of(image), "latest"));
    EXPECT_TRUE(path_exists(m_layout + "/oci-layout"));
}

TEST_F(OciLayoutTest, RefusesAnInvalidRefName) {
    Image image = testing::make_test_image(*m_store);
    auto result = write_oci_layout(m_layout, image, documents_of(image), "bad tag");
    ASSERT_FALSE(result);
    EXPECT_NE(result.error().message().find("\"bad tag\""), std::string::npos) << result.error().message();
    EXPECT_FALSE(path_exists(m_layout));
}

TEST(RefName, FollowsTheImageLayoutGrammar) {
    for (const char* good : {"latest", "v1.0", "127.0.0.1:5000/app:1", "a--b", "stable-release", "x@y+z"})
        EXPECT_TRUE(is_valid_ref_name(good)) << good;
    for (const char* bad : {"", "-a", "a-", "a//b", "/a", "a b", "a---b", "a:-b", "tag!"})
        EXPECT_FALSE(is_valid_ref_name(bad)) << bad;
}

}  // namespace
}  // namespace kiln
