// The two snapshotters, built by the kiln binary: --snapshotter=walk and --snapshotter=overlay make the same
// image from the same Dockerfile, and the choice (auto, or a refusal) is logged with its reason.

#include <unistd.h>

#include <iostream>

#include "images/digest.hpp"
#include "common/sha256.hpp"
#include "tests/integration/run_build_fixture.hpp"
#include "tests/support/tar_fixtures.hpp"
#include "tests/support/test_image.hpp"

namespace kiln::test {
namespace {

class SnapshotterTest : public RunBuildTest {
protected:
    // nullopt when --snapshotter=overlay works on this machine, else why not.
    std::optional<std::string> overlay_unavailable() {
        KilnRun probe = build("FROM base\nRUN echo probe > /probe\n", {"--snapshotter=overlay"});
        if (probe.exit_code == 0) return std::nullopt;
        size_t at = probe.output.find("overlay is unavailable");
        EXPECT_NE(at, std::string::npos) << "overlay failed for another reason:\n" << probe.output;
        return at == std::string::npos ? probe.output : probe.output.substr(at);
    }

    // The walk cannot always tell a directory made again from the one it replaced (the file system may hand
    // the new one the old inode number), and then whites out the old children one by one where overlay writes
    // an opaque marker: layer_listing() leaves whiteouts out, and their effect is checked through the unpacked
    // trees (tree_listing()).

    // Every path of the last build's unpacked image, with its type, mode, owner, size, link target and the
    // digest of its content.
    std::string tree_listing() const {
        auto listing =
            run_process({"sh", "-c",
                         "cd \"$0\" && find . -printf '%p %y %m %U %G %s %l\\n' | LC_ALL=C sort && "
                         "find . -type f -exec sha256sum {} + | LC_ALL=C sort",
                         m_bundle + "/rootfs"});
        EXPECT_TRUE(listing && listing->exit_code == 0);
        return listing ? listing->stdout_bytes : "";
    }

    // The last build's config without its diffIDs (see layer_listing()).
    nlohmann::json config_without_diff_ids() const {
        nlohmann::json image_config = config();
        image_config["rootfs"].erase("diff_ids");
        return image_config;
    }

    // Runs kiln with its work directory on an overlayfs, where no overlay upper directory can live, inside a
    // mount namespace of its own (nothing is mounted on the host). Needs root.
    KilnRun build_on_overlayfs_store(const std::vector<std::string>& extra_args) {
        std::string store = case_path("overlayfs-store");
        std::string script =
            str_cat("set -e; d=", store, "; mkdir -p $d/l $d/u $d/w $d/m; ",
                    "mount -t overlay kiln-test -o lowerdir=$d/l,upperdir=$d/u,workdir=$d/w $d/m; ",
                    "exec \"$0\" \"$@\" --work-dir=$d/m");
        EXPECT_TRUE(write_file_atomic(context_path("Dockerfile"), "FROM base\nRUN echo x > /x\n"));
        std::vector<std::string> args = {"build",     "--context",         context_path(""),
                                         "--no-push", "--oci-layout-path", case_path("layout-overlayfs")};
        for (const std::string& arg : fixture_args()) args.push_back(arg);
        args.insert(args.end(), extra_args.begin(), extra_args.end());
        return run_kiln(args, {"unshare", "--mount", "--propagation", "private", "sh", "-c", script});
    }
};

// Every kind of change a RUN can make, plus COPY, a file opened for writing and left alone (overlay copies
// it up; the copy-up is filtered) and a hardlink made within a step. With --reproducible both snapshotters
// must give layers with the same entries and bytes, the same tree and the same config.
TEST_F(SnapshotterTest, WalkAndOverlayMakeTheSameImage) {
    if (auto why = overlay_unavailable()) GTEST_SKIP() << *why;
    put("x", "copied\n");
    const std::string dockerfile =
        "FROM base\n"
        "RUN mkdir -p /d/sub /keep && echo old > /d/old && echo old > /d/sub/f && echo a > /f && echo k > "
        "/keep/k "
        "&& echo m > /mod && echo gone > /gone\n"
        "RUN echo more >> /mod && rm /gone && rm -rf /d && mkdir -p /d/sub && echo new > /d/new && chmod 600 "
        "/keep/k "
        "&& chown 12:34 /f && rm /bin/vi && : >> /etc/passwd\n"
        "RUN echo h > /h1 && ln /h1 /h2 && mkdir /hd && ln /h1 /hd/h3 && chmod 750 /hd && ln -s /h1 "
        "/hd/link\n"
        "COPY x /keep/x\n"
        "RUN rm -rf /keep && mkdir /keep && echo again > /keep/k && touch -d '2020-01-01' /keep/k\n"
        "WORKDIR /made/by/workdir\n"
        "RUN touch here\n";
    build_ok(dockerfile, {"--reproducible", "--snapshotter=walk"});
    std::string walk_layers = layer_listing();
    std::string walk_tree = tree_listing();
    nlohmann::json walk_config = config_without_diff_ids();
    KilnRun overlay = build_ok(dockerfile, {"--reproducible", "--snapshotter=overlay"});
    EXPECT_TRUE(contains(overlay.output, "snapshotter: overlay (--snapshotter=overlay)")) << overlay.output;
    EXPECT_EQ(layer_listing(), walk_layers);
    EXPECT_EQ(tree_listing(), walk_tree);
    EXPECT_EQ(config_without_diff_ids(), walk_config);
    EXPECT_FALSE(exists("d/old"));
    EXPECT_FALSE(exists("keep/x"));
    EXPECT_EQ(content_of("mod"), "m\nmore\n");
}

// A stage FROM another stage stacks the other's layer directories; COPY --from reads its mount.
TEST_F(SnapshotterTest, WalkAndOverlayAgreeAcrossStages) {
    if (auto why = overlay_unavailable()) GTEST_SKIP() << *why;
    const std::string dockerfile =
        "FROM base AS first\nRUN mkdir /shared && echo one > /shared/a && echo two > /shared/b\n"
        "FROM first\nRUN rm /shared/a && echo three >> /shared/b\nCOPY --from=first /shared/a /copied-a\n";
    build_ok(dockerfile, {"--reproducible", "--snapshotter=walk"});
    std::string walk_layers = layer_listing();
    std::string walk_tree = tree_listing();
    build_ok(dockerfile, {"--reproducible", "--snapshotter=overlay"});
    EXPECT_EQ(layer_listing(), walk_layers);
    EXPECT_EQ(tree_listing(), walk_tree);
    EXPECT_FALSE(exists("shared/a"));
    EXPECT_EQ(content_of("shared/b"), "two\nthree\n");
    EXPECT_EQ(content_of("copied-a"), "one\n");
}

// A RUN that changes no file adds no layer, only its history entry marked empty_layer, as Kaniko and BuildKit
// do; --force-build-metadata gives it, and a metadata step, an empty layer each. Both snapshotters.
TEST_F(SnapshotterTest, AStepThatChangesNoFileAddsNoLayerUnlessEveryStepMustHaveOne) {
    const std::string dockerfile = "FROM base\nRUN true\nRUN cat /etc/passwd > /dev/null\nENV A=1\nRUN echo x > /x\n";
    std::vector<std::string> snapshotters = {"walk"};
    if (auto why = overlay_unavailable()) std::cerr << "overlay not tested: " << *why << "\n";
    else snapshotters.push_back("overlay");
    const size_t base = base_layers().size();
    const std::string empty = "sha256:" + sha256_hex(std::string(1024, '\0'));  // a tar of its two zero blocks
    for (const std::string& snapshotter : snapshotters) {
        SCOPED_TRACE(snapshotter);
        auto count = [](const std::string& text, const std::string& part) {
            size_t n = 0;
            for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++n;
            return n;
        };
        KilnRun run = build_ok(dockerfile, {"--snapshotter=" + snapshotter});
        EXPECT_EQ(layer_count(), base + 1) << "only the echo's layer";
        EXPECT_EQ(count(run.output, "no layer: the step changed no file"), 2u) << run.output;
        EXPECT_EQ(count(run.output, ": 0 path(s)"), 0u) << "no empty layer is written:\n" << run.output;
        nlohmann::json history = config()["history"];
        ASSERT_GE(history.size(), 4u);
        for (size_t i = history.size() - 4; i < history.size() - 1; ++i)
            EXPECT_TRUE(history[i].value("empty_layer", false)) << history[i].dump();
        EXPECT_FALSE(history.back().value("empty_layer", false));
        EXPECT_EQ(content_of("x"), "x\n");

        run = build_ok(dockerfile, {"--snapshotter=" + snapshotter, "--force-build-metadata"});
        ASSERT_EQ(layer_count(), base + 4) << "a layer per step";
        EXPECT_EQ(count(run.output, ": 0 path(s)"), 3u) << "each empty layer written once:\n" << run.output;
        nlohmann::json diff_ids = config()["rootfs"]["diff_ids"];
        for (size_t i = base; i < base + 3; ++i) EXPECT_EQ(diff_ids[i], empty) << i;
        EXPECT_NE(diff_ids[base + 3], empty);
        history = config()["history"];
        for (size_t i = history.size() - 4; i < history.size(); ++i)
            EXPECT_FALSE(history[i].value("empty_layer", false)) << history[i].dump();
        EXPECT_EQ(content_of("x"), "x\n") << "umoci unpacks the empty layers";
    }
}

// A stage built FROM one that only set metadata starts from that stage's image, whose forced empty layers are
// one layer listed several times.
TEST_F(SnapshotterTest, ForcedEmptyLayersOfAStageAnotherBuildsOnAreStackedOnce) {
    const std::string dockerfile = "FROM base AS meta\nENV A=1\nENV B=2\nFROM meta\nRUN echo x > /x\n";
    std::vector<std::string> snapshotters = {"walk"};
    if (auto why = overlay_unavailable()) std::cerr << "overlay not tested: " << *why << "\n";
    else snapshotters.push_back("overlay");
    for (const std::string& snapshotter : snapshotters) {
        SCOPED_TRACE(snapshotter);
        build_ok(dockerfile, {"--snapshotter=" + snapshotter, "--force-build-metadata"});
        EXPECT_EQ(layer_count(), base_layers().size() + 3);
        EXPECT_EQ(content_of("x"), "x\n");
    }
}

// Layers extracted into the memory budget's tmpfs, spilled to the disk when it is too small, or kept on the
// disk with --memory-budget=0: the same image every way.
TEST_F(SnapshotterTest, TheMemoryBudgetChangesWhereLayersAreExtractedNotTheImage) {
    if (auto why = overlay_unavailable()) GTEST_SKIP() << *why;
    const std::string dockerfile =
        "FROM base AS first\nRUN mkdir /d && echo one > /d/a && ln /d/a /d/b && rm /bin/vi\n"
        "FROM first\nRUN echo two >> /d/a && rm /bin/ls && rm /d/b\n";
    KilnRun disk = build_ok(dockerfile, {"--reproducible", "--snapshotter=overlay", "--memory-budget=0"});
    EXPECT_FALSE(contains(disk.output, "memory budget")) << disk.output;
    std::string layers = layer_listing();
    std::string tree = tree_listing();
    KilnRun memory = build_ok(dockerfile, {"--reproducible", "--snapshotter=overlay", "--memory-budget=256Mi"});
    EXPECT_TRUE(contains(memory.output, "memory budget: layers are extracted, and steps write, into memory up to")) << memory.output;
    EXPECT_EQ(layer_listing(), layers);
    EXPECT_EQ(tree_listing(), tree);
    KilnRun spilled = build_ok(dockerfile, {"--reproducible", "--snapshotter=overlay", "--memory-budget=4Ki"});
    EXPECT_TRUE(contains(spilled.output, "memory budget: full")) << spilled.output;
    EXPECT_EQ(layer_listing(), layers);
    EXPECT_EQ(tree_listing(), tree);
}

// A step's upper directory is in the memory budget's tmpfs while it has room. A RUN that fills it fails there
// (ENOSPC), runs again with its upper on the disk, and gives the image a build without a budget gives; a step
// that fails for its own reasons runs once.
TEST_F(SnapshotterTest, AStepThatFillsTheMemoryBudgetRunsAgainOnTheDiskAndGivesTheSameImage) {
    if (auto why = overlay_unavailable()) GTEST_SKIP() << *why;
    const std::string dockerfile =
        "FROM base\nRUN echo small > /small\nRUN echo attempt >&2 && head -c 48000000 /dev/zero > /big && echo done > /marker\n";
    KilnRun disk = build_ok(dockerfile, {"--reproducible", "--snapshotter=overlay", "--memory-budget=0"});
    std::string layers = layer_listing();
    KilnRun spilled = build_ok(dockerfile, {"--reproducible", "--snapshotter=overlay", "--memory-budget=24Mi"});
    if (!contains(spilled.output, "and steps write, into memory")) GTEST_SKIP() << "steps cannot write to a tmpfs here:\n" << spilled.output;
    EXPECT_TRUE(contains(spilled.output, "memory budget: full while step 3/3 of stage 0 wrote; running it again on the disk"))
        << spilled.output;
    EXPECT_EQ(layer_listing(), layers);
    EXPECT_EQ(content_of("marker"), "done\n");

    KilnRun failing = build("FROM base\nRUN echo attempt >&2 && exit 3\n", {"--snapshotter=overlay", "--memory-budget=24Mi"});
    EXPECT_EQ(failing.exit_code, 3) << failing.output;
    EXPECT_FALSE(contains(failing.output, "running it again")) << failing.output;
}

TEST_F(SnapshotterTest, AutoPicksOverlayWhereItWorksAndSaysSo) {
    if (auto why = overlay_unavailable()) GTEST_SKIP() << *why;
    KilnRun run = build_ok("FROM base\nRUN echo x > /x\n");
    EXPECT_TRUE(contains(run.output, "snapshotter: overlay (")) << run.output;
}

TEST_F(SnapshotterTest, OverlayOnAStoreWhereItIsImpossibleFailsClearly) {
    if (::geteuid() != 0) GTEST_SKIP() << "mounting the overlayfs store needs root";
    KilnRun run = build_on_overlayfs_store({"--snapshotter=overlay"});
    EXPECT_NE(run.exit_code, 0);
    EXPECT_TRUE(contains(run.output, "--snapshotter=overlay: overlay is unavailable: ")) << run.output;
}

TEST_F(SnapshotterTest, AutoFallsBackToWalkWithTheReasonWhereOverlayIsImpossible) {
    if (::geteuid() != 0) GTEST_SKIP() << "mounting the overlayfs store needs root";
    KilnRun run = build_on_overlayfs_store({});
    EXPECT_EQ(run.exit_code, 0) << run.output;
    EXPECT_TRUE(contains(run.output, "snapshotter: walk (overlay unavailable: ")) << run.output;
}

TEST_F(SnapshotterTest, WalkFlagSkipsTheOverlayProbe) {
    KilnRun run = build_ok("FROM base\nRUN echo x > /x\n", {"--snapshotter=walk"});
    EXPECT_TRUE(contains(run.output, "snapshotter: walk (--snapshotter=walk)")) << run.output;
}

// Base layers that delete, or that write through a symlink a lower layer made: each case's layers are stacked
// on the busybox base and flattened (COPY --from of the whole stage), and the two snapshotters must give the
// same tree, or fail with the same error. An opaque marker at a layer's root was applied by the walk
// (everything below gone, /bin included) and ignored by overlay; an entry under a lower layer's symlink to a
// directory went through it under the walk, as Docker and containerd apply it, and replaced it under overlay.
TEST_F(SnapshotterTest, HostileBaseLayersFlattenTheSameUnderBothSnapshotters) {
    if (auto why = overlay_unavailable()) GTEST_SKIP() << *why;
    struct Case {
        const char* name;
        std::vector<TestTar> layers;
        const char* present = nullptr;  // a line the flattened tree must have (tree_listing())
        const char* absent = nullptr;   // the start of a line it must not have
        const char* error = nullptr;    // what both must fail with, if they must
    };
    const Case cases[] = {
        {"opaque-root", {TestTar().file(".wh..wh..opq", "").file("only", "kept\n")}, "./only f", "./bin "},
        {"opaque-dir", {TestTar().dir("etc").file("etc/.wh..wh..opq", "").file("etc/new", "new\n")}, "./etc/new f", "./etc/passwd "},
        {"whiteout-dir", {TestTar().file(".wh.bin", "")}, nullptr, "./bin "},
        {"whiteout-then-file", {TestTar().file(".wh.tmp", "").file("tmp", "now a file\n")}, "./tmp f"},
        {"whiteout-in-a-missing-dir", {TestTar().file("nowhere/.wh.x", "").file("opaque-nowhere/.wh..wh..opq", "")}, nullptr, "./nowhere"},
        {"file-under-a-lower-symlink",
         {TestTar().symlink("via", "/etc"), TestTar().file("via/new", "new\n").file("via/deeper/f", "f\n")}, "./etc/deeper/f f"},
        {"file-under-a-symlink-of-its-own-layer", {TestTar().symlink("via", "etc").file("via/new", "new\n")}, "./etc/new f"},
        {"directory-over-a-lower-symlink", {TestTar().symlink("via", "/etc"), TestTar().dir("via").file("via/f", "f\n")}, "./via/f f"},
        {"whiteout-under-a-lower-symlink", {TestTar().symlink("via", "/etc"), TestTar().file("via/.wh.passwd", "")}, "./via l", "./etc/passwd "},
        {"opaque-under-a-lower-symlink",
         {TestTar().symlink("via", "/etc"),
          TestTar().file("via/.wh..wh..opq", "").file("via/kept", "kept\n")}, "./etc/kept f", "./etc/passwd "},
        {"hardlink-through-a-lower-symlink", {TestTar().symlink("via", "/etc"), TestTar().hardlink("linked", "via/passwd")}, "./linked f"},
        {"file-under-a-dangling-lower-symlink",
         {TestTar().symlink("via", "/nowhere"), TestTar().file("via/f", "f\n")},
         nullptr, nullptr, "its parent \"via\" is a symlink to \"/nowhere\", which leads to no directory inside the root"},
        {"file-under-a-lower-file", {TestTar().file("plain", "x\n"), TestTar().file("plain/f", "f\n")}, nullptr, nullptr, "Not a directory"},
        // The same layer twice (old images list the empty layer many times): overlayfs takes a lower once.
        {"a-layer-listed-twice",
         {TestTar().file("again", "a\n"), TestTar().file(".wh.again", "").file("between", "b\n"),
          TestTar().file("again", "a\n")}, "./again f"},
        {"the-empty-layer-listed-twice", {TestTar(), TestTar().file("x", "x\n"), TestTar()}, "./x f"},
    };
    for (const Case& c : cases) {
        std::vector<std::string> layers = base_layers();
        for (const TestTar& layer : c.layers) layers.push_back(layer.bytes());
        std::string layout = case_path(str_cat("image-", c.name));
        auto image = write_test_image(layout, "latest", layers);
        ASSERT_TRUE(image) << image.error().message();
        std::string listings[2];
        for (int i = 0; i < 2; ++i) {
            const char* snapshotter = i == 0 ? "--snapshotter=walk" : "--snapshotter=overlay";
            std::vector<std::string> args = {"--reproducible", snapshotter, "--build-context",
                                             "deleting=oci-layout://" + layout};
            const std::string dockerfile = "FROM deleting AS d\nFROM scratch\nCOPY --from=d / /\n";
            if (c.error) {
                KilnRun run = build(dockerfile, args);
                EXPECT_NE(run.exit_code, 0) << c.name << " " << snapshotter << ":\n" << run.output;
                EXPECT_TRUE(contains(run.output, c.error)) << c.name << " " << snapshotter << ":\n" << run.output;
                continue;
            }
            build_ok(dockerfile, args);
            listings[i] = tree_listing();
        }
        EXPECT_EQ(listings[1], listings[0]) << c.name << ": overlay (left) and walk (right) differ";
        if (c.present) {
            EXPECT_TRUE(contains(listings[0], c.present)) << c.name << ":\n" << listings[0];
        }
        if (c.absent) {
            EXPECT_FALSE(contains(listings[0], str_cat("\n", c.absent))) << c.name << ":\n" << listings[0];
        }
    }
}

}  // namespace
}  // namespace kiln::test
