package gearlift.shopstandin;

import java.time.Instant;

/** Minimal line logger to stdout (journald / the test harness pick it up). Never log secrets. */
final class Log {
    private Log() {}

    static void info(String msg) {
        line("INFO", msg);
    }

    static void warn(String msg) {
        line("WARN", msg);
    }

    static void error(String msg) {
        line("ERROR", msg);
    }

    /** The one line per request (never bodies, headers or query strings). */
    static void request(String method, String path, int status, long ms) {
        info("request method=" + method + " path=" + path + " status=" + status + " ms=" + ms);
    }

    private static void line(String level, String msg) {
        // println on System.out is synchronized and auto-flushed.
        System.out.println(Instant.now() + " " + level + " " + sanitize(msg));
    }

    /** Keep one event on one line and bound its length. */
    static String sanitize(String s) {
        if (s == null) {
            return "";
        }
        StringBuilder b = new StringBuilder(Math.min(s.length(), 500));
        for (int i = 0; i < s.length() && b.length() < 500; i++) {
            char c = s.charAt(i);
            b.append(c < 0x20 || c == 0x7f ? ' ' : c);
        }
        return b.toString();
    }
}
