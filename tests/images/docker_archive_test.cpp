#include "images/docker_archive.hpp"

#include <dirent.h>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/files.hpp"
#include "common/temp_dir.hpp"
#include "image_fixtures.hpp"
#include "images/index.hpp"

namespace kiln {
namespace {

using testing::find_tool;
using testing::run;

class DockerArchiveTest : public ::testing::Test {
protected:
    void SetUp() override {
        m_dir = std::move(*TempDir::create(default_temp_parent(), "kiln-docker-archive-test-"));
        m_store = std::make_unique<BlobStore>(std::move(*BlobStore::open(m_dir.path() + "/store")));
        m_tar = m_dir.path() + "/image.tar";
        m_image = std::make_unique<Image>(testing::make_test_image(*m_store));
        auto documents = write_image_documents(*m_image, ManifestFormat::docker, *m_store);
        ASSERT_TRUE(documents) << documents.error().message();
        m_documents = std::move(*documents);
    }

    void write(const std::vector<std::string>& tags = {}) {
        auto status = write_docker_archive(m_tar, *m_image, m_documents, tags);
        ASSERT_TRUE(status) << status.error().message();
    }

    nlohmann::json manifest_json() {
        auto files = testing::read_tar_files(m_tar);
        return files.contains("manifest.json") ? nlohmann::json::parse(files["manifest.json"]) : nlohmann::json();
    }

    std::vector<std::string> diff_ids() const {
        std::vector<std::string> ids;
        for (const Digest& id : m_image->config().diff_ids) ids.push_back(id.str());
        return ids;
    }

    TempDir m_dir;
    std::unique_ptr<BlobStore> m_store;
    std::string m_tar;
    std::unique_ptr<Image> m_image;
    ImageDocuments m_documents;
};

TEST_F(DockerArchiveTest, ManifestNamesFilesAfterTheirContentDigest) {
    write({"127.0.0.1:5000/app:1"});
    auto files = testing::read_tar_files(m_tar);
    nlohmann::json manifest = manifest_json();
    ASSERT_TRUE(manifest.is_array() && manifest.size() == 1u) << manifest;
    std::string config = manifest[0]["Config"];
    EXPECT_EQ(config, m_documents.config.digest.encoded() + ".json");
    EXPECT_EQ(files[config], m_documents.config_bytes);
    std::vector<std::string> layers = manifest[0]["Layers"];
    ASSERT_EQ(layers.size(), 2u);
    for (size_t i = 0; i < layers.size(); ++i) {
        const Digest& digest = m_image->layers()[i]->descriptor().digest;
        EXPECT_EQ(layers[i], digest.encoded() + ".tar.gz");
        EXPECT_EQ(Digest::of_bytes(files[layers[i]]), digest) << layers[i];
    }
}

TEST_F(DockerArchiveTest, ListsRepoTagsAndRepositories) {
    write({"127.0.0.1:5000/app:1", "127.0.0.1:5000/app:latest", "example.com/other:2"});
    nlohmann::json manifest = manifest_json();
    EXPECT_EQ(manifest[0]["RepoTags"],
              nlohmann::json({"127.0.0.1:5000/app:1", "127.0.0.1:5000/app:latest", "example.com/other:2"}));
    auto files = testing::read_tar_files(m_tar);
    ASSERT_TRUE(files.contains("repositories"));
    std::string top = m_image->layers().back()->descriptor().digest.encoded();
    EXPECT_EQ(nlohmann::json::parse(files["repositories"]),
              nlohmann::json({{"127.0.0.1:5000/app", {{"1", top}, {"latest", top}}}, {"example.com/other", {{"2", top}}}}));
}

TEST_F(DockerArchiveTest, WithoutTagsWritesAnEmptyRepoTagsList) {
    write();
    EXPECT_EQ(manifest_json()[0]["RepoTags"], nlohmann::json::array());
    EXPECT_FALSE(testing::read_tar_files(m_tar).contains("repositories"));
}

TEST_F(DockerArchiveTest, SkopeoInspectReportsTheLayersAndConfig) {
    if (find_tool("skopeo").empty()) GTEST_SKIP() << "skopeo is not installed";
    write({"127.0.0.1:5000/app:1"});
    ProcessResult inspected = run({"skopeo", "inspect", "docker-archive:" + m_tar});
    ASSERT_EQ(inspected.exit_code, 0) << inspected.stderr_bytes;
    nlohmann::json info = nlohmann::json::parse(inspected.stdout_bytes);
    // docker-archive: addresses layers by diffID, as docker load does.
    EXPECT_EQ(info["Layers"].get<std::vector<std::string>>(), diff_ids());
    EXPECT_EQ(info["Architecture"], "amd64");
    EXPECT_EQ(info["Labels"]["org.example.test"], "yes");

    ProcessResult config = run({"skopeo", "inspect", "--config", "--raw", "docker-archive:" + m_tar});
    ASSERT_EQ(config.exit_code, 0) << config.stderr_bytes;
    EXPECT_EQ(Digest::of_bytes(config.stdout_bytes), m_documents.config.digest);
}

TEST_F(DockerArchiveTest, SkopeoFindsTheImageByEachRepoTag) {
    if (find_tool("skopeo").empty()) GTEST_SKIP() << "skopeo is not installed";
    write({"127.0.0.1:5000/app:1", "example.com/other:2"});
    for (const char* tag : {"127.0.0.1:5000/app:1", "example.com/other:2"}) {
        ProcessResult result = run({"skopeo", "inspect", "docker-archive:" + m_tar + ":" + tag});
        EXPECT_EQ(result.exit_code, 0) << tag << ": " << result.stderr_bytes;
    }
    ProcessResult missing = run({"skopeo", "inspect", "docker-archive:" + m_tar + ":127.0.0.1:5000/app:2"});
    EXPECT_NE(missing.exit_code, 0);
}

TEST_F(DockerArchiveTest, SkopeoCopiesItToAnOciLayoutWithTheSameDiffIds) {
    if (find_tool("skopeo").empty()) GTEST_SKIP() << "skopeo is not installed";
    write({"127.0.0.1:5000/app:1"});
    std::string layout = m_dir.path() + "/copied";
    ProcessResult copied = run({"skopeo", "copy", "docker-archive:" + m_tar, "oci:" + layout + ":x"});
    ASSERT_EQ(copied.exit_code, 0) << copied.stderr_bytes;
    auto index = Index::parse(*read_file(layout + "/index.json"));
    ASSERT_TRUE(index) << index.error().message();
    ASSERT_EQ(index->manifests.size(), 1u);
    auto blob = [&](const Digest& digest) { return *read_file(layout + "/blobs/sha256/" + digest.encoded()); };
    auto manifest = Manifest::parse(blob(index->manifests[0].digest));
    ASSERT_TRUE(manifest) << manifest.error().message();
    auto config = ImageConfig::parse(blob(manifest->config.digest));
    ASSERT_TRUE(config) << config.error().message();
    EXPECT_EQ(config->diff_ids, m_image->config().diff_ids);
    EXPECT_EQ(config->config.cmd, m_image->config().config.cmd);
}

TEST_F(DockerArchiveTest, AFailedWriteLeavesNoFileAtTheTarget) {
    const LayerPtr& real = m_image->layers()[1];
    LayerPtr corrupt = testing::make_bytes_layer(real->descriptor(), real->diff_id(), "truncated");
    auto image = Image::create(m_image->config(), {m_image->layers()[0], corrupt});
    ASSERT_TRUE(image) << image.error().message();
    auto status = write_docker_archive(m_tar, *image, m_documents, {"127.0.0.1:5000/app:1"});
    ASSERT_FALSE(status);
    EXPECT_NE(status.error().message().find(real->descriptor().digest.str()), std::string::npos)
        << status.error().message();
    EXPECT_FALSE(path_exists(m_tar));
    // Nothing beside it either: only the store is left in the directory.
    DIR* handle = ::opendir(m_dir.path().c_str());
    std::vector<std::string> names;
    while (dirent* entry = ::readdir(handle))
        if (std::string_view(entry->d_name) != "." && std::string_view(entry->d_name) != "..")
            names.push_back(entry->d_name);
    ::closedir(handle);
    EXPECT_EQ(names, std::vector<std::string>{"store"});
}

TEST_F(DockerArchiveTest, AFailedWriteKeepsAnEarlierArchive) {
    write({"127.0.0.1:5000/app:1"});
    std::string before = *read_file(m_tar, 1 << 20);
    auto status = write_docker_archive(m_tar, *m_image, m_documents, {"no-tag"});
    ASSERT_FALSE(status);
    EXPECT_EQ(*read_file(m_tar, 1 << 20), before);
}

TEST_F(DockerArchiveTest, TheSameImageGivesTheSameBytes) {
    write({"127.0.0.1:5000/app:1"});
    std::string first = *read_file(m_tar, 1 << 20);
    write({"127.0.0.1:5000/app:1"});
    EXPECT_EQ(*read_file(m_tar, 1 << 20), first);
}

TEST_F(DockerArchiveTest, ARepeatedLayerIsStoredOnce) {
    LayerPtr layer = m_image->layers()[0];
    Image twice = Image::empty(Platform{.os = "linux", .architecture = "amd64"})
                      .with_layer(layer, History{.created_by = "a"})
                      .with_layer(layer, History{.created_by = "b"});
    auto documents = write_image_documents(twice, ManifestFormat::docker, *m_store);
    ASSERT_TRUE(documents);
    ASSERT_TRUE(write_docker_archive(m_tar, twice, *documents, {}));
    nlohmann::json manifest = manifest_json();
    EXPECT_EQ(manifest[0]["Layers"].size(), 2u);
    // manifest.json, the config and one layer file.
    EXPECT_EQ(testing::read_tar_files(m_tar).size(), 3u);
}

TEST(SplitRepoTag, SeparatesRepositoryAndTag) {
    auto split = split_repo_tag("127.0.0.1:5000/team/app:1.2");
    ASSERT_TRUE(split) << split.error().message();
    EXPECT_EQ(split->first, "127.0.0.1:5000/team/app");
    EXPECT_EQ(split->second, "1.2");
    for (const char* bad : {"127.0.0.1:5000/app", "app", "app:", ":tag", "app@sha256:abc", "a b:1", ""}) {
        auto refused = split_repo_tag(bad);
        EXPECT_FALSE(refused) << bad;
    }
}

}  // namespace
}  // namespace kiln
