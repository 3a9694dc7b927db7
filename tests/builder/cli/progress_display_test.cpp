// The progress renderer, fed scripted looks at the transfers in flight, for a terminal, plain logs and JSON logs.
#include "builder/cli/progress_display.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace kiln {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

class ProgressRendererTest : public ::testing::Test {
protected:
    TransferSnapshot transfer(std::uint64_t id, std::string label, std::uint64_t done, std::uint64_t total,
                              std::string stage = "") const {
        return TransferSnapshot{.id = id,
                                .label = std::move(label),
                                .stage = std::move(stage),
                                .done = done,
                                .total = total,
                                .started = m_start};
    }
    Clock::time_point at(int ms) const { return m_start + milliseconds(ms); }
    Clock::time_point m_start = Clock::now();
};

TEST_F(ProgressRendererTest, DescribesBytesRateAndTimeLeft) {
    EXPECT_EQ(describe_progress(transfer(1, "pull", 10'000'000, 40'000'000), at(2000)),
              "10.0 MB of 40.0 MB (25%), 5.0 MB/s, about 6 s left");
    EXPECT_EQ(describe_progress(transfer(1, "write layer", 3'000'000, 0), at(1000)), "3.0 MB, 3.0 MB/s");
    EXPECT_EQ(describe_progress(transfer(1, "pull", 0, 100), at(100)), "0 B of 100 B (0%)");
}

TEST_F(ProgressRendererTest, ATerminalGetsALinePerTransferRedrawnInPlace) {
    ProgressRenderer tty(ProgressMode::tty);
    std::string first = tty.update({transfer(1, "pull sha256:aaa", 1'000'000, 4'000'000, "builder"),
                                    transfer(2, "pull sha256:bbb", 0, 2'000'000)},
                                   at(1000));
    EXPECT_EQ(first,
              "[builder] pull sha256:aaa  1.0 MB of 4.0 MB (25%), 1.0 MB/s, about 3 s left\n"
              "pull sha256:bbb  0 B of 2.0 MB (0%)\n");
    // The next look moves up over both lines, clears them and draws what is left.
    std::string second =
        tty.update({transfer(1, "pull sha256:aaa", 4'000'000, 4'000'000, "builder")}, at(2000));
    EXPECT_EQ(second, "\033[2F\033[J[builder] pull sha256:aaa  4.0 MB of 4.0 MB (100%), 2.0 MB/s\n");
    // Nothing changed: nothing written.
    EXPECT_EQ(tty.update({transfer(1, "pull sha256:aaa", 4'000'000, 4'000'000, "builder")}, at(2000)), "");
}

TEST_F(ProgressRendererTest, ALogLineOnATerminalGoesAboveTheTransfersWhichAreDrawnAgain) {
    ProgressRenderer tty(ProgressMode::tty);
    EXPECT_EQ(tty.line("before any transfer\n", {}, at(0)), "before any transfer\n");
    tty.update({transfer(1, "push layer sha256:ccc", 500, 1000)}, at(100));
    // The transfer as it is when the line comes, not as it was last drawn.
    EXPECT_EQ(
        tty.line("[stage 0 2/3] RUN make\n", {transfer(1, "push layer sha256:ccc", 600, 1000)}, at(100)),
        "\033[1F\033[J[stage 0 2/3] RUN make\npush layer sha256:ccc  600 B of 1.0 kB (60%)\n");
    EXPECT_EQ(tty.update({}, at(200)), "\033[1F\033[J");
    EXPECT_EQ(tty.clear(), "");
}

TEST_F(ProgressRendererTest, PlainLogsGetALineOnlyForALongTransferAndThenAtASteadyInterval) {
    ProgressRenderer plain(ProgressMode::plain, ProgressTiming{.plain_after = milliseconds(3000),
                                                               .plain_every = milliseconds(10000)});
    // Looks every second for 25 s at a transfer of 1 MB/s, and at one that ends within 2 s.
    std::vector<std::string> outputs;
    std::vector<int> when;
    for (int second = 0; second <= 25; ++second) {
        std::vector<TransferSnapshot> transfers = {
            transfer(7, "pull sha256:ddd", static_cast<std::uint64_t>(second) * 1'000'000, 100'000'000)};
        if (second < 2) transfers.push_back(transfer(8, "pull sha256:quick", 1, 2));
        std::string out = plain.update(transfers, at(second * 1000));
        if (!out.empty()) {
            outputs.push_back(out);
            when.push_back(second);
        }
    }
    EXPECT_EQ(when, (std::vector<int>{3, 13, 23}));
    ASSERT_FALSE(outputs.empty());
    EXPECT_EQ(outputs[0], "pull sha256:ddd: 3.0 MB of 100.0 MB (3%), 1.0 MB/s, about 97 s left\n");
}

TEST_F(ProgressRendererTest, APlainLineNamesTheStageAndALogLinePassesThroughUnchanged) {
    ProgressRenderer plain(ProgressMode::plain,
                           ProgressTiming{.plain_after = milliseconds(0), .plain_every = milliseconds(1000)});
    EXPECT_EQ(plain.update({transfer(1, "extract sha256:eee", 10, 0, "builder")}, at(100)),
              "[builder] extract sha256:eee: 10 B\n");
    EXPECT_EQ(plain.line("a line\n", {transfer(1, "extract sha256:eee", 10, 0, "builder")}, at(100)),
              "a line\n");
    EXPECT_EQ(plain.clear(), "");
}

// With JSON logs, a progress line is an object of the log, at the plain schedule, with the numbers as fields.
TEST_F(ProgressRendererTest, JsonLogsGetAProgressObjectAtThePlainSchedule) {
    ProgressRenderer json(ProgressMode::json, ProgressTiming{.plain_after = milliseconds(3000),
                                                             .plain_every = milliseconds(10000)});
    EXPECT_EQ(json.update({transfer(1, "push layer sha256:fff", 1'000'000, 8'000'000, "app")}, at(1000)), "");
    std::string out = json.update({transfer(1, "push layer sha256:fff", 4'000'000, 8'000'000, "app")}, at(4000));
    ASSERT_FALSE(out.empty());
    EXPECT_EQ(out.back(), '\n');
    EXPECT_EQ(out.find('\n'), out.size() - 1) << "one line: " << out;
    auto object = nlohmann::json::parse(out, nullptr, false);
    ASSERT_FALSE(object.is_discarded()) << out;
    EXPECT_EQ(object["event"], "progress");
    EXPECT_EQ(object["level"], "info");
    EXPECT_EQ(object["stage"], "app");
    EXPECT_EQ(object["label"], "push layer sha256:fff");
    EXPECT_EQ(object["done"], 4'000'000);
    EXPECT_EQ(object["total"], 8'000'000);
    EXPECT_DOUBLE_EQ(object["seconds"].get<double>(), 4.0);
    EXPECT_EQ(object["message"], "push layer sha256:fff: 4.0 MB of 8.0 MB (50%), 1.0 MB/s, about 4 s left");
    EXPECT_TRUE(object.contains("time"));
    EXPECT_EQ(json.update({transfer(1, "push layer sha256:fff", 5'000'000, 8'000'000, "app")}, at(5000)), "")
        << "the next is due 10 s on";
    EXPECT_EQ(json.line("{\"event\":\"message\"}\n", {}, at(5000)), "{\"event\":\"message\"}\n");
}

TEST(ProgressModeTest, AutoIsATerminalsOnlyOnATerminal) {
    EXPECT_EQ(*parse_progress_mode("auto", true), ProgressMode::tty);
    EXPECT_EQ(*parse_progress_mode("auto", false), ProgressMode::plain);
    EXPECT_EQ(*parse_progress_mode("tty", false), ProgressMode::tty);
    EXPECT_EQ(*parse_progress_mode("plain", true), ProgressMode::plain);
    EXPECT_FALSE(parse_progress_mode("fancy", true));
}

TEST(TransferProgressTest, ATransferIsInFlightWhileItLivesWithWhatItCounted) {
    size_t before = transfers_in_flight().size();
    {
        TransferProgress progress("pull sha256:fff", 100);
        progress.add(40);
        progress.add(2);
        std::vector<TransferSnapshot> now = transfers_in_flight();
        ASSERT_EQ(now.size(), before + 1);
        EXPECT_EQ(now.back().label, "pull sha256:fff");
        EXPECT_EQ(now.back().done, 42u);
        EXPECT_EQ(now.back().total, 100u);
        progress.restart();
        EXPECT_EQ(transfers_in_flight().back().done, 0u);
        progress.finish();
        EXPECT_EQ(transfers_in_flight().size(), before) << "finished before it is destroyed";
    }
    EXPECT_EQ(transfers_in_flight().size(), before);
}

}  // namespace
}  // namespace kiln
