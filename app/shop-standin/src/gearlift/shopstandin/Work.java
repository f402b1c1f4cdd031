package gearlift.shopstandin;

import java.io.IOException;
import java.io.InputStream;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Properties;

/**
 * The CPU a customer's request costs the monolith (rendering, pricing, templating), as a demand
 * in CPU time: each request this is spent on computes until its own thread has used that much CPU
 * (ThreadMXBean's thread CPU time), so a host with less CPU (a smaller share of a core, or more
 * requests at once) answers later, as the real shop does when it is busy. Zero (the default) spends
 * nothing.
 *
 * <p>The demand comes from {@code SHOP_WORK_CPU_US} at run time, else from the jar itself
 * ({@code work.properties}, written by build.sh when {@code SHOP_WORK_CPU_US} is set at build time:
 * scripts/bench-peak builds the one artifact both estates run with the cost its calibration gives).
 */
final class Work {
    static final String ENV = "SHOP_WORK_CPU_US";
    static final long MAX_MICROS = 1_000_000;
    private static final String RESOURCE = "work.properties";
    private static final String KEY = "work.cpu.us";
    /** Thread CPU time is read every this many digests (one is well under a microsecond). */
    private static final int BATCH = 64;

    static final Work NONE = new Work(0, null);

    final long micros;
    private final ThreadMXBean threads;

    private Work(long micros, ThreadMXBean threads) {
        this.micros = micros;
        this.threads = threads;
    }

    static Work of(long micros) {
        if (micros <= 0) {
            return NONE;
        }
        ThreadMXBean bean = ManagementFactory.getThreadMXBean();
        if (!bean.isCurrentThreadCpuTimeSupported()) {
            // Without thread CPU time the demand cannot be measured as CPU; refuse rather than
            // spend wall time, which would make a busy host look exactly as fast as an idle one.
            throw new IllegalStateException("this JVM cannot measure a thread's CPU time: " + ENV
                    + " needs it (unset it, or set it to 0)");
        }
        if (!bean.isThreadCpuTimeEnabled()) {
            bean.setThreadCpuTimeEnabled(true);
        }
        return new Work(micros, bean);
    }

    /** The jar's built-in demand (0 when it has none); a bad value is an {@link Settings.Invalid}. */
    static long builtIn() throws Settings.Invalid {
        try (InputStream in = Work.class.getResourceAsStream(RESOURCE)) {
            if (in == null) {
                return 0;
            }
            Properties props = new Properties();
            props.load(in);
            String v = props.getProperty(KEY, "0").strip();
            long n = Long.parseLong(v);
            if (n < 0 || n > MAX_MICROS) {
                throw new NumberFormatException(v);
            }
            return n;
        } catch (IOException | NumberFormatException e) {
            throw new Settings.Invalid("the jar's " + RESOURCE + " has a bad " + KEY + " (" + e.getMessage()
                    + "): rebuild it with " + ENV + "=0.." + MAX_MICROS);
        }
    }

    /** Computes on the calling thread until it has used {@link #micros} of CPU time; returns the result. */
    int spend() {
        if (micros == 0) {
            return 0;
        }
        long start = threads.getCurrentThreadCpuTime();
        long until = start + micros * 1000L;
        MessageDigest digest;
        try {
            digest = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is missing from this JVM", e);
        }
        byte[] state = new byte[32];
        do {
            for (int i = 0; i < BATCH; i++) {
                state = digest.digest(state);
            }
        } while (threads.getCurrentThreadCpuTime() < until);
        return state[0];
    }

    @Override
    public String toString() {
        return micros == 0 ? "no CPU work per request" : "CPU work per request " + micros + " us";
    }
}
