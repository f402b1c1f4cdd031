package gearlift.shopstandin;

import java.nio.file.Path;
import java.util.function.Function;

/** Application settings from the process environment, validated once at start-up. */
final class Settings {
    static final String DEFAULT_UPLOAD_DIR = "/var/lib/shop/designs";
    static final long DEFAULT_UPLOAD_MAX = 10L * 1024 * 1024;
    static final int DEFAULT_SESSION_TIMEOUT_S = 1800;
    static final int DEFAULT_MAX_SESSIONS = 100_000;

    final Path envFile;
    final Path uploadDir;
    final long uploadMaxBytes;
    final int sessionTimeoutSeconds;
    final int maxSessions;
    final Path refetchFile; // null: no re-fetch requests on an authentication failure
    final long workCpuMicros; // CPU time each customer request costs (Work); 0: none

    /** A setting with a bad value; the message names the variable and the accepted range. */
    static final class Invalid extends Exception {
        private static final long serialVersionUID = 1L;

        Invalid(String msg) {
            super(msg);
        }
    }

    private Settings(Path envFile, Path uploadDir, long uploadMaxBytes, int sessionTimeoutSeconds,
            int maxSessions, Path refetchFile, long workCpuMicros) {
        this.envFile = envFile;
        this.workCpuMicros = workCpuMicros;
        this.refetchFile = refetchFile;
        this.uploadDir = uploadDir;
        this.uploadMaxBytes = uploadMaxBytes;
        this.sessionTimeoutSeconds = sessionTimeoutSeconds;
        this.maxSessions = maxSessions;
    }

    static Settings from(Function<String, String> env) throws Invalid {
        Path envFile = Path.of(value(env, "SHOP_ENV_FILE", Main.DEFAULT_ENV_FILE));
        String dir = value(env, "SHOP_UPLOAD_DIR", DEFAULT_UPLOAD_DIR);
        if (!dir.startsWith("/")) {
            throw new Invalid("SHOP_UPLOAD_DIR must be an absolute path");
        }
        long max = number(env, "SHOP_UPLOAD_MAX_BYTES", DEFAULT_UPLOAD_MAX, 1, 1024L * 1024 * 1024);
        int timeout = (int) number(env, "SHOP_SESSION_TIMEOUT", DEFAULT_SESSION_TIMEOUT_S, 1, 7 * 86400);
        int maxSessions = (int) number(env, "SHOP_MAX_SESSIONS", DEFAULT_MAX_SESSIONS, 1, 10_000_000);
        String refetch = value(env, "SHOP_DB_REFETCH_FILE", "");
        if (!refetch.isEmpty() && !refetch.startsWith("/")) {
            throw new Invalid("SHOP_DB_REFETCH_FILE must be an absolute path");
        }
        long work = number(env, Work.ENV, Work.builtIn(), 0, Work.MAX_MICROS);
        return new Settings(envFile, Path.of(dir).normalize(), max, timeout, maxSessions,
                refetch.isEmpty() ? null : Path.of(refetch).normalize(), work);
    }

    private static String value(Function<String, String> env, String key, String dflt) {
        String v = env.apply(key);
        return v == null || v.isBlank() ? dflt : v.strip();
    }

    private static long number(Function<String, String> env, String key, long dflt, long min, long max)
            throws Invalid {
        String v = value(env, key, null);
        if (v == null) {
            return dflt;
        }
        try {
            long n = Long.parseLong(v);
            if (n >= min && n <= max) {
                return n;
            }
        } catch (NumberFormatException e) {
            // fall through
        }
        throw new Invalid(key + " must be an integer " + min + ".." + max);
    }

    @Override
    public String toString() {
        return "upload dir " + uploadDir + ", upload max " + uploadMaxBytes + " bytes, session timeout "
                + sessionTimeoutSeconds + "s, max sessions " + maxSessions
                + (refetchFile == null ? "" : ", re-fetch requests " + refetchFile)
                + (workCpuMicros == 0 ? "" : ", CPU work per request " + workCpuMicros + " us");
    }
}
