#include "images/image.hpp"

#include <gtest/gtest.h>

#include "common/temp_dir.hpp"
#include "image_fixtures.hpp"

namespace kiln {
namespace {

class ImageTest : public ::testing::Test {
protected:
    void SetUp() override {
        m_dir = std::move(*TempDir::create(default_temp_parent(), "kiln-image-test-"));
        m_store = std::make_unique<BlobStore>(std::move(*BlobStore::open(m_dir.path())));
    }
    TempDir m_dir;
    std::unique_ptr<BlobStore> m_store;
};

TEST_F(ImageTest, WithLayerAppendsDiffIdAndHistoryAndLeavesTheOriginal) {
    Image base = Image::empty(Platform{.os = "linux", .architecture = "arm64", .variant = "v8"});
    LayerPtr layer = testing::store_gzip_layer(*m_store, testing::first_layer_files());
    Image next = base.with_layer(layer, History{.created_by = "COPY . /", .empty_layer = true});
    ASSERT_EQ(next.layers().size(), 1u);
    EXPECT_EQ(next.config().diff_ids, std::vector<Digest>{layer->diff_id()});
    ASSERT_EQ(next.config().history.size(), 1u);
    EXPECT_EQ(next.config().history[0].created_by, "COPY . /");
    EXPECT_FALSE(next.config().history[0].empty_layer);  // a layer's history entry is never empty
    EXPECT_TRUE(base.layers().empty());
    EXPECT_TRUE(base.config().diff_ids.empty());
    EXPECT_EQ(next.config().variant, "v8");
}

TEST_F(ImageTest, EmptyLayerHistoryAddsNoLayer) {
    Image image = Image::empty(Platform{.os = "linux", .architecture = "amd64"})
                      .with_empty_layer_history(History{.created_by = "ENV A=1"});
    EXPECT_TRUE(image.layers().empty());
    ASSERT_EQ(image.config().history.size(), 1u);
    EXPECT_TRUE(image.config().history[0].empty_layer);
}

TEST_F(ImageTest, WithConfigKeepsTheRootfsOfTheLayers) {
    Image image = testing::make_test_image(*m_store);
    ImageConfig replacement;
    replacement.os = "linux";
    replacement.architecture = "amd64";
    replacement.diff_ids = {Digest::of_bytes("unrelated")};
    Image next = image.with_config(replacement);
    EXPECT_EQ(next.config().diff_ids, image.config().diff_ids);
}

TEST_F(ImageTest, CreateAcceptsMatchingDiffIds) {
    Image image = testing::make_test_image(*m_store);
    auto created = Image::create(image.config(), image.layers());
    ASSERT_TRUE(created) << created.error().message();
    EXPECT_EQ(created->layers().size(), 2u);
}

TEST_F(ImageTest, CreateRefusesMismatchedDiffIds) {
    Image image = testing::make_test_image(*m_store);
    ImageConfig config = image.config();
    std::swap(config.diff_ids[0], config.diff_ids[1]);
    auto created = Image::create(config, image.layers());
    ASSERT_FALSE(created);
    EXPECT_NE(created.error().message().find("layer 1"), std::string::npos) << created.error().message();
    EXPECT_NE(created.error().message().find(image.config().diff_ids[0].str()), std::string::npos);

    config.diff_ids.pop_back();
    auto short_list = Image::create(config, image.layers());
    ASSERT_FALSE(short_list);
    EXPECT_NE(short_list.error().message().find("1 diff_ids"), std::string::npos) << short_list.error().message();
}

TEST_F(ImageTest, WriteImageDocumentsStoresConfigAndManifest) {
    Image image = testing::make_test_image(*m_store);
    auto documents = write_image_documents(image, ManifestFormat::oci, *m_store);
    ASSERT_TRUE(documents) << documents.error().message();
    EXPECT_EQ(*m_store->read(documents->config.digest), documents->config_bytes);
    EXPECT_EQ(*m_store->read(documents->manifest.digest), documents->manifest_bytes);
    auto manifest = Manifest::parse(documents->manifest_bytes);
    ASSERT_TRUE(manifest);
    EXPECT_EQ(manifest->config.digest, documents->config.digest);
    ASSERT_EQ(manifest->layers.size(), 2u);
    EXPECT_EQ(manifest->layers[1].digest, image.layers()[1]->descriptor().digest);
    EXPECT_TRUE(check_image_documents(image, *documents));
}

TEST_F(ImageTest, DockerFormatUsesDockerMediaTypes) {
    Image image = testing::make_test_image(*m_store);
    auto documents = write_image_documents(image, ManifestFormat::docker, *m_store);
    ASSERT_TRUE(documents);
    EXPECT_EQ(documents->manifest.media_type, media_type::docker_manifest);
    EXPECT_EQ(documents->config.media_type, media_type::docker_config);
    EXPECT_EQ(documents->parsed_manifest.layers[0].media_type, media_type::docker_layer_gzip);
}

TEST_F(ImageTest, NondistributableLayersKeepTheirType) {
    LayerPtr layer = testing::store_gzip_layer(*m_store, testing::first_layer_files());
    Descriptor foreign = layer->descriptor();
    foreign.media_type = media_type::docker_layer_foreign_gzip;
    auto file_layer = std::make_shared<FileLayer>(foreign, layer->diff_id(), m_store->path(foreign.digest));
    Image image = Image::empty(Platform{.os = "windows", .architecture = "amd64"}).with_layer(file_layer, {});
    auto documents = write_image_documents(image, ManifestFormat::oci, *m_store);
    ASSERT_TRUE(documents);
    EXPECT_EQ(documents->parsed_manifest.layers[0].media_type, media_type::docker_layer_foreign_gzip);
}

TEST_F(ImageTest, CheckImageDocumentsRefusesDocumentsOfAnotherImage) {
    Image image = testing::make_test_image(*m_store);
    Image other = Image::empty(Platform{.os = "linux", .architecture = "amd64"})
                      .with_layer(image.layers()[0], History{.created_by = "one layer"});
    auto documents = write_image_documents(other, ManifestFormat::oci, *m_store);
    ASSERT_TRUE(documents);
    auto status = check_image_documents(image, *documents);
    ASSERT_FALSE(status);
    EXPECT_NE(status.error().message().find("1 layers but the image has 2"), std::string::npos)
        << status.error().message();
    documents->config_bytes += " ";
    auto tampered = check_image_documents(other, *documents);
    ASSERT_FALSE(tampered);
    EXPECT_NE(tampered.error().message().find("config"), std::string::npos) << tampered.error().message();
}

}  // namespace
}  // namespace kiln
