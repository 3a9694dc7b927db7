// The planner, the scheduler and the stage builder together, with fakes at the three boundaries
// (tests/builder/fakes.hpp): no root, no namespaces, no registry. The stages' rootfs directories are real.

#include "builder/stage_builder.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <mutex>

#include "common/strings.hpp"

#include "builder/scheduler.hpp"
#include "builder/snapshot/layer_sink.hpp"
#include "layers/layer_writer.hpp"
#include "common/log.hpp"
#include "common/temp_dir.hpp"
#include "tests/builder/fakes.hpp"
#include "tests/support/tar_fixtures.hpp"

namespace kiln {
namespace {

class StageBuilderTest : public ::testing::Test {
protected:
    void SetUp() override {
        m_dir = std::move(*TempDir::create(default_temp_parent(), "kiln-stage-builder-test-"));
        ASSERT_TRUE(make_directories(context_dir()));
        ASSERT_TRUE(make_directories(m_dir.path() + "/work"));
        for (const char* name : {"a", "b", "c"}) m_images.add(name, RunConfig{});
        m_host.sandbox = &m_runner;
    }

    std::string context_dir() const { return m_dir.path() + "/context"; }

    // Plans and builds `text`, keeping what the stages made in m_outputs.
    Status build(const std::string& text) {
        KILN_ASSIGN(m_dockerfile, dockerfile::parse_dockerfile(text, "Dockerfile"));
        BuildArgs build_args({});
        BuildPlatforms platforms{.target = host_platform(), .build = host_platform()};
        KILN_ASSIGN(MetaArgs meta, MetaArgs::evaluate(m_dockerfile, build_args, platforms));
        KILN_ASSIGN(m_plan, plan_build(PlanInputs{.dockerfile = m_dockerfile,
                                                  .meta_args = meta,
                                                  .build_args = build_args,
                                                  .target = "",
                                                  .platform = platforms.target,
                                                  .images = m_images}));
        KILN_ASSIGN(BuildContext context, BuildContext::open(context_dir(), context_dir() + "/Dockerfile"));
        ImageFilesystems image_filesystems(m_images, m_dir.path() + "/work/images", OwnershipFailure::error);
        UrlDownloads downloads(m_dir.path() + "/work/downloads", HttpClientOptions{}, 1 << 20);
        KILN_ASSIGN(BlobStore store, BlobStore::open(m_dir.path() + "/work/blobs"));
        StoreLayerSink layers(store, LayerWriteOptions{}, ManifestFormat::oci);
        BuildInputs inputs{.options = m_options,
                           .environment = m_environment,
                           .host = m_host,
                           .dockerfile = m_dockerfile,
                           .plan = m_plan,
                           .context = context,
                           .images = m_images,
                           .image_filesystems = image_filesystems,
                           .downloads = downloads,
                           .snapshotter = m_snapshotter,
                           .layers = layers,
                           .cache = m_cache_on ? &m_cache : nullptr,
                           .work_dir = m_dir.path() + "/work",
                           .cache_dir = m_dir.path() + "/cache",
                           .platform = platforms.target,
                           .created_seconds = 0};
        m_outputs.clear();
        return build_stages(inputs, m_outputs, 4);
    }

    const StageOutput& output_of(size_t stage) const {
        for (size_t i = 0; i < m_plan.stages.size(); ++i)
            if (m_plan.stages[i].index == stage) return m_outputs.at(i);
        throw std::runtime_error("no such stage");
    }

    TempDir m_dir;
    BuildOptions m_options;
    HostEnvironment m_environment;
    HostFacts m_host;
    test::FakeStepRunner m_runner;
    test::FakeImageSource m_images;
    test::FakeSnapshotter m_snapshotter;
    test::FakeLayerCache m_cache;
    bool m_cache_on = false;
    dockerfile::Dockerfile m_dockerfile;
    BuildPlan m_plan;
    std::vector<StageOutput> m_outputs;
};

TEST_F(StageBuilderTest, ConfigStepsChangeTheConfigAndCommitNothing) {
    ASSERT_TRUE(build("FROM a\nENV X=1\nLABEL y=z\nCMD [\"x\"]\n"));
    EXPECT_EQ(m_snapshotter.log.events(), std::vector<std::string>{}) << "no step needed the stage's files";
    const Image& image = output_of(0).image;
    EXPECT_EQ(image.config().config.env_value("X"), "1");
    EXPECT_EQ(image.config().config.labels.at("y"), "z");
    ASSERT_EQ(image.config().history.size(), 3u);
    for (const History& history : image.config().history) EXPECT_TRUE(history.empty_layer);
}

TEST_F(StageBuilderTest, ForceBuildMetadataGivesEveryStepALayerAnEmptyOneWhereItMadeNone) {
    m_options.force_build_metadata = true;
    ASSERT_TRUE(build("FROM a\nENV X=1\nLABEL y=z\nRUN true\n"));
    const Image& image = output_of(0).image;
    ASSERT_EQ(image.layers().size(), 3u);
    EXPECT_EQ(image.layers()[0]->diff_id(), empty_layer_diff_id()) << "ENV";
    EXPECT_EQ(image.layers()[1]->diff_id(), empty_layer_diff_id()) << "LABEL";
    EXPECT_NE(image.layers()[2]->diff_id(), empty_layer_diff_id()) << "the RUN's own layer";
    for (const History& history : image.config().history) EXPECT_FALSE(history.empty_layer);
    std::vector<std::string> events = m_snapshotter.log.events();
    EXPECT_EQ(std::count_if(events.begin(), events.end(), [](const std::string& e) { return e.starts_with("commit"); }), 1)
        << "an empty layer is written without the stage's files";
}

// With --single-snapshot only the stage's one layer is forced, whether or not the stage ever needed its files.
TEST_F(StageBuilderTest, ForceBuildMetadataWithASingleSnapshotForcesTheStagesOneLayer) {
    m_options.force_build_metadata = true;
    m_options.single_snapshot = true;
    ASSERT_TRUE(build("FROM a\nENV X=1\nLABEL y=z\n"));
    const Image& image = output_of(0).image;
    ASSERT_EQ(image.layers().size(), 1u);
    EXPECT_EQ(image.layers()[0]->diff_id(), empty_layer_diff_id());
    EXPECT_EQ(image.config().history.back().created_by, "single snapshot of stage 0");
}

// VOLUME used to add a layer holding the empty directory. Now it only declares the volume; the next RUN makes
// the mount point, which joins that RUN's layer (as buildah does), and a VOLUME at the end adds nothing.
TEST_F(StageBuilderTest, VolumeAddsNoLayerAndTheNextRunMakesItsMountPoint) {
    ASSERT_TRUE(build("FROM a\nVOLUME /data\nRUN true\nVOLUME /last\n"));
    EXPECT_EQ(m_snapshotter.log.events(),
              (std::vector<std::string>{"prepare stage 0 with 0 base layer(s)", "prepare run stage 0: discarding [/data]",
                                        "commit stage 0: anything [data] discarding [/data]", "finish stage 0"}));
    const Image& image = output_of(0).image;
    EXPECT_EQ(image.layers().size(), 1u) << "the RUN's layer only";
    EXPECT_EQ(image.config().config.volumes, (std::set<std::string>{"/data", "/last"}));
    EXPECT_TRUE(path_exists(output_of(0).filesystem->path() + "/data"));
    EXPECT_FALSE(path_exists(output_of(0).filesystem->path() + "/last"));
}

TEST_F(StageBuilderTest, WorkdirMakesALayerOnlyWhenItCreatesTheDirectory) {
    ASSERT_TRUE(build("FROM a\nWORKDIR /app\nWORKDIR /app\nWORKDIR /\n"));
    std::vector<std::string> events = m_snapshotter.log.events();
    EXPECT_EQ(std::count_if(events.begin(), events.end(), [](const std::string& e) { return e.starts_with("commit"); }), 1);
    EXPECT_EQ(output_of(0).image.layers().size(), 1u);
    EXPECT_EQ(output_of(0).image.config().history.size(), 3u);
}

TEST_F(StageBuilderTest, AFailingRunCarriesItsExitCodeAndItsLine) {
    m_runner.exit_code = 3;
    Status built = build("FROM a\nRUN false\n");
    ASSERT_FALSE(built);
    EXPECT_EQ(built.error().message(), "Dockerfile:2: RUN false: step 2/2 of stage 0 exited with code 3");
    EXPECT_EQ(built.error().exit_code(), 3);
}

TEST_F(StageBuilderTest, AStageWhoseBaseStageFailedNeverStarts) {
    m_runner.exit_code = 1;
    ASSERT_FALSE(build("FROM a AS one\nRUN false\nFROM one\nRUN true\n"));
    for (const std::string& event : m_snapshotter.log.events()) EXPECT_EQ(event.find("stage 1"), std::string::npos) << event;
}

TEST_F(StageBuilderTest, RunGetsItsPlannedEnvironmentUserDirectoryAndMounts) {
    ASSERT_TRUE(build("FROM a\nARG V=1\nUSER 1000:1000\nWORKDIR /w\nRUN --mount=type=tmpfs,target=t echo $V\n"));
    std::vector<RunSpec> runs = m_runner.runs();
    ASSERT_EQ(runs.size(), 1u);
    const RunSpec& spec = runs[0];
    EXPECT_EQ(spec.argv, (std::vector<std::string>{"/bin/sh", "-c", "echo $V"}));
    EXPECT_NE(std::find(spec.environment.begin(), spec.environment.end(), "V=1"), spec.environment.end());
    EXPECT_NE(std::find(spec.environment.begin(), spec.environment.end(), "HOME=/"), spec.environment.end());
    EXPECT_EQ(spec.uid, 1000u);
    EXPECT_EQ(spec.gid, 1000u);
    EXPECT_EQ(spec.working_directory, "/w");
    ASSERT_EQ(spec.mounts.size(), 1u);
    EXPECT_EQ(spec.mounts[0].kind, RunMountKind::tmpfs);
    EXPECT_EQ(spec.mounts[0].target, "/w/t");
}

TEST_F(StageBuilderTest, CopyFromAStageReadsTheFilesystemThatStageMade) {
    ASSERT_TRUE(write_file_atomic(context_dir() + "/hello.txt", "hello\n"));
    ASSERT_TRUE(build("FROM a AS one\nCOPY hello.txt /x/\nFROM b\nARG SRC=one\nCOPY --from=$SRC /x/hello.txt /copied\n"));
    EXPECT_EQ(read_file(output_of(1).filesystem->path() + "/copied").value_or(""), "hello\n");
}

TEST_F(StageBuilderTest, CopyFromScratchCopiesFromAnEmptyFilesystem) {
    ASSERT_TRUE(build("FROM a\nCOPY --from=scratch / /empty/\n"));
    EXPECT_TRUE(path_exists(output_of(0).filesystem->path() + "/empty"));
    EXPECT_TRUE(m_images.resolved() == std::vector<std::string>{"a"}) << "scratch is no image to pull";
}

TEST_F(StageBuilderTest, AFailingOnbuildTriggerNamesItsLineAndTheFromThatRanIt) {
    RunConfig with_trigger;
    with_trigger.on_build = {"RUN false"};
    m_images.add("triggered", with_trigger);
    m_runner.exit_code = 2;
    Status built = build("FROM triggered\nRUN true\n");
    ASSERT_FALSE(built);
    EXPECT_EQ(built.error().message(),
              "ONBUILD trigger of triggered:3: RUN false: run by Dockerfile:1: FROM triggered: an ONBUILD trigger of "
              "stage 0 exited with code 2");
}

TEST_F(StageBuilderTest, BaseImagesAreFetchedOnlyByTheStagesStartingFromThem) {
    ASSERT_TRUE(build("FROM a AS one\nFROM one\nRUN true\n"));
    EXPECT_EQ(m_images.fetched(), (std::vector<std::string>{"a"}));
}

// Lines logged while a stage builds (here, by the fake sandbox) carry the stage's name when stages may run at
// once, and stay as they are when the stages form one chain.
TEST_F(StageBuilderTest, StagesThatMayRunAtOnceLabelTheirLogLines) {
    test::LogCapture capture;
    ASSERT_TRUE(build("FROM a AS one\nRUN first\nFROM b AS two\nRUN second\nFROM c\nCOPY --from=one / /\n"
                      "COPY --from=two / /\n"));
    EXPECT_EQ(capture.lines_with("fake run: /bin/sh -c first"),
              (std::vector<std::string>{"[one] fake run: /bin/sh -c first"}));
    EXPECT_EQ(capture.lines_with("fake run: /bin/sh -c second"),
              (std::vector<std::string>{"[two] fake run: /bin/sh -c second"}));
    EXPECT_EQ(capture.lines_with("[one 2/2] RUN first").size(), 1u) << "a step's header names the stage once";
}

TEST_F(StageBuilderTest, AChainOfStagesKeepsItsLogLinesUnlabelled) {
    test::LogCapture capture;
    ASSERT_TRUE(build("FROM a AS one\nRUN first\nFROM one\nRUN second\n"));
    EXPECT_EQ(capture.lines_with("fake run: /bin/sh -c first"), (std::vector<std::string>{"fake run: /bin/sh -c first"}));
}

TEST_F(StageBuilderTest, AFullyCachedStageNeverPreparesItsFilesystem) {
    m_cache_on = true;
    const char* dockerfile = "FROM a\nWORKDIR /app\nRUN one\nRUN two\n";
    ASSERT_TRUE(build(dockerfile));
    std::vector<Digest> first = output_of(0).image.config().diff_ids;
    size_t events = m_snapshotter.log.events().size();
    ASSERT_TRUE(build(dockerfile));
    std::vector<std::string> all = m_snapshotter.log.events();
    std::vector<std::string> rebuild(all.begin() + static_cast<std::ptrdiff_t>(events), all.end());
    EXPECT_TRUE(rebuild.empty()) << "nothing was extracted, run or committed: " << join(rebuild, "; ");
    EXPECT_EQ(output_of(0).image.config().diff_ids, first);
    EXPECT_EQ(m_runner.runs().size(), 2u) << "only the first build ran its steps";
    EXPECT_FALSE(output_of(0).filesystem) << "a stage no later step reads keeps no filesystem";
}

TEST_F(StageBuilderTest, TheFirstMissAppliesTheCachedLayersBeforeIt) {
    m_cache_on = true;
    ASSERT_TRUE(build("FROM a\nRUN one\nRUN two\n"));
    size_t events = m_snapshotter.log.events().size();
    ASSERT_TRUE(build("FROM a\nRUN one\nRUN two\nRUN three\n"));
    std::vector<std::string> all = m_snapshotter.log.events();
    std::vector<std::string> rebuild(all.begin() + static_cast<std::ptrdiff_t>(events), all.end());
    ASSERT_EQ(rebuild.size(), 6u) << join(rebuild, "; ");
    EXPECT_EQ(rebuild[0], "prepare stage 0 with 0 base layer(s)");
    EXPECT_TRUE(rebuild[1].starts_with("apply stage 0: ") && rebuild[2].starts_with("apply stage 0: "))
        << join(rebuild, "; ");
    EXPECT_TRUE(rebuild[3].starts_with("prepare run stage 0"));
    EXPECT_TRUE(rebuild[4].starts_with("commit stage 0"));
    EXPECT_EQ(m_runner.runs().back().argv.back(), "three");
}

TEST_F(StageBuilderTest, ACachedLayerThatCannotBeFetchedIsAMissAndTheStageStartsOver) {
    m_cache_on = true;
    ASSERT_TRUE(build("FROM a\nRUN one\nRUN two\n"));
    m_cache.broken_layers = true;
    test::LogCapture capture;
    ASSERT_TRUE(build("FROM a\nRUN one\nRUN two\nRUN three\n"));
    EXPECT_TRUE(capture.contains("not cached: its entry's layer could not be fetched")) << capture.text();
    EXPECT_TRUE(capture.contains("failed verification")) << capture.text();
    std::vector<std::string> runs;
    for (const auto& run : m_runner.runs()) runs.push_back(run.argv.back());
    EXPECT_EQ(runs, (std::vector<std::string>{"one", "two", "one", "two", "three"}));
}

TEST_F(StageBuilderTest, AStageThatLaterStepsReadIsPreparedEvenWhenFullyCached) {
    m_cache_on = true;
    const char* dockerfile = "FROM a AS tools\nRUN one\nFROM b\nCOPY --from=tools / /t/\n";
    ASSERT_TRUE(build(dockerfile));
    ASSERT_TRUE(build(dockerfile));
    EXPECT_TRUE(output_of(0).filesystem) << "COPY --from needs its files";
    EXPECT_FALSE(output_of(1).filesystem);
}

TEST_F(StageBuilderTest, HitsSayWhereFromAndMissesSayWhy) {
    m_cache_on = true;
    test::LogCapture capture;
    ASSERT_TRUE(build("FROM a\nARG V=1\nRUN echo $V\nRUN two\n"));
    EXPECT_EQ(capture.lines_with("not cached: no earlier build of this step").size(), 2u);
    ASSERT_TRUE(build("FROM a\nARG V=2\nRUN echo $V\nRUN two\n"));
    EXPECT_TRUE(capture.contains("not cached: ARG or ENV changed: V")) << capture.text();
    ASSERT_TRUE(build("FROM a\nARG V=2\nRUN echo $V\nRUN two\n"));
    EXPECT_EQ(capture.lines_with("cached (fake)").size(), 2u) << capture.text();
}

TEST_F(StageBuilderTest, CacheRunLayersOffRunsEveryRunButStillCachesCopies) {
    m_cache_on = true;
    m_options.cache.run_layers = false;
    ASSERT_TRUE(write_file_atomic(context_dir() + "/f", "f\n"));
    const char* dockerfile = "FROM a\nCOPY f /f\nRUN one\n";
    ASSERT_TRUE(build(dockerfile));
    ASSERT_TRUE(build(dockerfile));
    EXPECT_EQ(m_runner.runs().size(), 2u);
    EXPECT_EQ(m_cache.stores, 1u) << "the COPY only";
}

}  // namespace
}  // namespace kiln
