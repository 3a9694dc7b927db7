#pragma once
// A Dockerfile whose RUN steps give files several owners, made as root and as another user, with a setuid binary,
// COPY --chown and a second stage's COPY --from: what every sandbox mode and every pod must build alike. It takes
// the build argument BASE (a busybox image) and a context file named "copied".

namespace kiln::test {

inline constexpr const char* k_ownership_dockerfile =
    "ARG BASE\n"
    "FROM $BASE AS first\n"
    "RUN echo 'app:x:1234:1234::/home/app:/bin/sh' >> /etc/passwd && echo 'app:x:1234:' >> /etc/group "
    "&& mkdir -p /app /home/app && echo hi > /app/f && chown -R app:app /app /home/app && echo x > /dev/null\n"
    "RUN cp /bin/busybox /suid && chmod 4755 /suid && id > /id-root && chown 7:8 /id-root && chmod 640 /id-root\n"
    "USER app\n"
    "RUN id > /tmp/id-app && touch /app/by-app && mkdir /home/app/private && chmod 700 /home/app/private\n"
    "COPY --chown=1234:1234 copied /app/copied\n"
    "FROM $BASE\n"
    "COPY --from=first /app /app2\n"
    "COPY --from=first /suid /id-root /\n";

}  // namespace kiln::test
