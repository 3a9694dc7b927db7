// Layers as a whole build sees them: deletions that survive being re-applied from a registry image and from
// an earlier stage (Kaniko #704, #1636), hardlinks that COPY --from keeps (Kaniko #1743), and --reproducible
// builds that give the same digest from different work directories and context mtimes.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "common/files.hpp"
#include "common/strings.hpp"
#include "tests/integration/registry_fixture.hpp"
#include "tests/integration/run_build_fixture.hpp"
#include "tests/support/tar_fixtures.hpp"
#include "tests/support/test_image.hpp"

extern char** environ;

namespace kiln::test {
namespace {

bool has(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

// `tar -tv` lines of one gzip layer blob.
std::vector<std::string> verbose_listing(const std::string& blob) {
    auto listing = run_process({"tar", "-tvzf", blob});
    EXPECT_TRUE(listing && listing->exit_code == 0) << blob;
    std::vector<std::string> lines;
    if (!listing) return lines;
    for (const std::string& line : split(listing->stdout_bytes, '\n'))
        if (!line.empty()) lines.push_back(line);
    return lines;
}

using DeletionTest = RegistryBuildTest;

TEST_F(DeletionTest, DeletionsFromTheBaseAndFromEarlierStagesStayDeletedInTheImage) {
    // A base whose second layer deletes a file and hides a directory's lower contents, as another builder
    // would have written it.
    std::string lower = TestTar()
                            .dir("data")
                            .file("data/keep", "kept")
                            .file("data/gone", "deleted by the base")
                            .dir("data/dir")
                            .file("data/dir/x", "deleted by the stage")
                            .dir("opq")
                            .file("opq/old", "hidden by the opaque marker")
                            .bytes();
    std::string upper = TestTar()
                            .file("data/.wh.gone", "")
                            .dir("opq")
                            .file("opq/.wh..wh..opq", "")
                            .file("opq/new", "deleted by the final stage")
                            .bytes();
    std::string layout = m_dir.path() + "/base-layout";
    ASSERT_TRUE(write_test_image(layout, "1", {lower, upper}));
    std::string deleting_base = reference("fidelity/deleting-base:1");
    auto pushed = push_layout(layout, "1", deleting_base);
    ASSERT_TRUE(pushed) << pushed.error().message();

    // The stage deletes in its own RUN; the final image re-applies the stage's layers and deletes once more.
    std::string context = context_with(str_cat("FROM ", base(), " AS tools\n", "FROM ", deleting_base,
                                               " AS stage\n", "COPY --from=tools / /\n",
                                               "RUN rm -r /data/dir\n", "FROM stage\n", "RUN rm /opq/new\n"));
    std::string destination = reference("fidelity/deleted:1");
    KilnRun run = run_kiln(
        {"build", "--context", context, "--insecure-pull", "--insecure", "--destination", destination});
    ASSERT_EQ(run.exit_code, 0) << run.output;

    std::string out_layout = m_dir.path() + "/out";
    auto pulled = pull_to_layout(destination, out_layout, "pulled");
    ASSERT_TRUE(pulled) << pulled.error().message();
    auto unpacked = unpack_layout(out_layout, "pulled", m_dir.path() + "/bundle");
    ASSERT_TRUE(unpacked) << unpacked.error().message();
    std::string rootfs = m_dir.path() + "/bundle/rootfs/";
    EXPECT_EQ(read_file(rootfs + "data/keep").value_or("<missing>"), "kept");
    EXPECT_FALSE(lstat_path(rootfs + "data/gone")) << "the base's whiteout was lost";
    EXPECT_FALSE(lstat_path(rootfs + "opq/old")) << "the base's opaque marker was lost";
    EXPECT_FALSE(lstat_path(rootfs + "data/dir"))
        << "the stage's deletion was lost when its layers were re-applied";
    EXPECT_FALSE(lstat_path(rootfs + "opq/new")) << "the final stage's deletion was lost";
    EXPECT_TRUE(lstat_path(rootfs + "opq")) << "the hidden directory itself stays";
    EXPECT_TRUE(lstat_path(rootfs + "bin/busybox"));
}

using CrossLayerHardlinkTest = RegistryBuildTest;

TEST_F(CrossLayerHardlinkTest, BaseWhoseLayerLinksToAnEarlierLayersFileBuildsWithBothSnapshotters) {
    std::string lower = TestTar().dir("usr").file("usr/tool", "the tool\n", 0755).bytes();
    std::string upper = TestTar().dir("bin").hardlink("bin/tool", "usr/tool").bytes();
    std::string layout = m_dir.path() + "/base-layout";
    ASSERT_TRUE(write_test_image(layout, "1", {lower, upper}));
    std::string linking_base = reference("fidelity/linking-base:1");
    auto pushed = push_layout(layout, "1", linking_base);
    ASSERT_TRUE(pushed) << pushed.error().message();

    std::string context = context_with(str_cat("FROM ", base(), " AS tools\n", "FROM ", linking_base, "\n",
                                               "COPY --from=tools /bin/busybox /busybox\n",
                                               "RUN [\"/busybox\", \"cp\", \"/bin/tool\", \"/copied\"]\n"));
    for (const char* snapshotter : {"overlay", "walk"}) {
        SCOPED_TRACE(snapshotter);
        std::string out = m_dir.path() + "/out-" + snapshotter;
        KilnRun run = run_kiln({"build", "--context", context, "--insecure-pull", "--no-push", "--snapshotter",
                                snapshotter, "--oci-layout-path", out});
        ASSERT_EQ(run.exit_code, 0) << run.output;
        std::string bundle = m_dir.path() + "/bundle-" + snapshotter;
        auto unpacked = unpack_layout(out, "latest", bundle);
        ASSERT_TRUE(unpacked) << unpacked.error().message();
        EXPECT_EQ(read_file(bundle + "/rootfs/bin/tool").value_or("<missing>"), "the tool\n");
        EXPECT_EQ(read_file(bundle + "/rootfs/copied").value_or("<missing>"), "the tool\n")
            << "the RUN step saw the linked file";
    }
}

class LayerFidelityBuildTest : public RunBuildTest {
protected:
    // The layer blob of the last image's newest layer.
    std::string last_layer_blob() const {
        std::string digest = manifest()["layers"].back()["digest"];
        return m_layout + "/blobs/sha256/" + digest.substr(7);
    }
    std::string manifest_digest() const {
        auto index = nlohmann::json::parse(read_file(m_layout + "/index.json").value_or("{}"));
        return index["manifests"][0].value("digest", "");
    }
};

TEST_F(LayerFidelityBuildTest, CopyFromKeepsHardlinksAsOneFileAndLinks) {
    build_ok(
        "FROM base AS maker\n"
        "RUN mkdir /h && head -c 100000 /bin/busybox > /h/a && ln /h/a /h/b && ln /h/a /h/c\n"
        "FROM scratch\n"
        "COPY --from=maker /h /h\n");
    size_t regular = 0, hardlinks = 0;
    for (const std::string& line : verbose_listing(last_layer_blob())) {
        if (!has(line, "h/")) continue;
        if (line.starts_with("-")) ++regular;
        if (line.starts_with("h") || has(line, " link to ")) ++hardlinks;
    }
    EXPECT_EQ(regular, 1u) << "the linked file's data is stored once";
    EXPECT_EQ(hardlinks, 2u) << "the other names are hardlink entries";
    auto a = stat_of("h/a");
    auto c = stat_of("h/c");
    ASSERT_TRUE(a && c);
    EXPECT_EQ(a->st_ino, c->st_ino) << "umoci unpacks them as one inode";
    EXPECT_EQ(a->st_nlink, 3u);
}

// The environment of this process without SOURCE_DATE_EPOCH, plus `extra`.
std::vector<std::string> environment_with(const std::vector<std::string>& extra) {
    std::vector<std::string> environment;
    for (char** entry = environ; *entry; ++entry)
        if (!std::string_view(*entry).starts_with("SOURCE_DATE_EPOCH=")) environment.push_back(*entry);
    environment.insert(environment.end(), extra.begin(), extra.end());
    return environment;
}

class ReproducibleBuildTest : public LayerFidelityBuildTest,
                              public ::testing::WithParamInterface<std::string> {
protected:
    // A build that exercises every kind of timestamp: COPY from the context, a RUN that adds, changes and
    // deletes (a whiteout), and the config's and history's created.
    std::string build_twice_and_compare() {
        put("app/one.txt", "one\n");
        put("app/two.txt", "two\n");
        const std::string dockerfile =
            "FROM base\n"
            "COPY app /app\n"
            "RUN echo made > /app/made && rm /app/two.txt && rm -r /tmp\n"
            "ENV X=1\n";
        std::vector<std::string> environment = environment_with(
            GetParam().empty() ? std::vector<std::string>{}
                               : std::vector<std::string>{"SOURCE_DATE_EPOCH=" + GetParam()});
        build_ok(dockerfile, {"--reproducible", "--work-dir", case_path("work-a")}, environment);
        std::string first = manifest_digest();
        EXPECT_FALSE(first.empty());

        // New mtimes for every context file, a different work directory, a later wall clock.
        for (const char* file : {"app/one.txt", "app/two.txt"}) {
            struct timespec times[2] = {{1'000'000'000, 0}, {1'000'000'000, 0}};
            EXPECT_EQ(::utimensat(AT_FDCWD, context_path(file).c_str(), times, 0), 0);
        }
        build_ok(dockerfile, {"--reproducible", "--work-dir", case_path("work-b")}, environment);
        EXPECT_EQ(manifest_digest(), first) << "the same inputs gave a different image";
        return first;
    }
};

TEST_P(ReproducibleBuildTest, SameInputsGiveTheSameDigestWithEveryTimestampAtTheEpoch) {
    build_twice_and_compare();
    std::int64_t epoch = GetParam().empty() ? 0 : std::stoll(GetParam());
    std::string created = config().value("created", "");
    EXPECT_EQ(created, epoch == 0 ? "1970-01-01T00:00:00Z" : "2023-11-14T22:13:20Z");
    // The history entries of this Dockerfile's COPY, RUN and ENV (the base's own came from another build).
    const nlohmann::json history = config()["history"];
    ASSERT_GE(history.size(), 3u);
    for (size_t i = history.size() - 3; i < history.size(); ++i)
        EXPECT_EQ(history[i].value("created", ""), created) << history[i].dump();
    // Every entry of the layers this build made (the base's are not its own), whiteouts included.
    const nlohmann::json layers = manifest()["layers"];
    size_t checked = 0;
    std::string listed;
    for (size_t i = layers.size() - 2; i < layers.size(); ++i) {
        std::string digest = layers[i]["digest"];
        auto listing = run_process(
            {"tar", "--full-time", "--utc", "-tvzf", m_layout + "/blobs/sha256/" + digest.substr(7)});
        ASSERT_TRUE(listing && listing->exit_code == 0);
        listed += listing->stdout_bytes;
        std::string expected_time = epoch == 0 ? "1970-01-01 00:00:00" : "2023-11-14 22:13:20";
        for (const std::string& line : split(listing->stdout_bytes, '\n')) {
            if (line.empty()) continue;
            ++checked;
            EXPECT_TRUE(has(line, expected_time)) << line;
        }
    }
    EXPECT_GT(checked, 4u);
    EXPECT_TRUE(has(listed, "app/.wh.two.txt")) << "the RUN's deletions are whiteouts: " << listed;
    EXPECT_TRUE(has(listed, ".wh.tmp")) << listed;
}

INSTANTIATE_TEST_SUITE_P(SourceDateEpoch, ReproducibleBuildTest, ::testing::Values("", "1700000000"),
                         [](const ::testing::TestParamInfo<std::string>& param) {
                             return param.param.empty() ? std::string("unset") : "set_" + param.param;
                         });

}  // namespace
}  // namespace kiln::test
