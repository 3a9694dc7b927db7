#pragma once
// A Dockerfile whose first two stages can only finish when both run at once: each leaves its mark in a shared
// cache mount and waits for the other's (sequentially, the first would give up after its 60 s). Each prints a
// line; a last stage copies from both. It needs the suite's busybox "base" and a --cache-dir.

namespace kiln::test {

constexpr const char* k_concurrent_stages = R"DF(FROM base AS left
RUN --mount=type=cache,id=meet,target=/meet,sharing=shared \
    touch /meet/left && i=0 && while [ ! -f /meet/right ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done && \
    test -f /meet/right && echo hello-from-left && echo left > /done
FROM base AS right
RUN --mount=type=cache,id=meet,target=/meet,sharing=shared \
    touch /meet/right && i=0 && while [ ! -f /meet/left ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done && \
    test -f /meet/left && echo hello-from-right && echo right > /done
FROM base
COPY --from=left /done /left
COPY --from=right /done /right
)DF";

}  // namespace kiln::test
