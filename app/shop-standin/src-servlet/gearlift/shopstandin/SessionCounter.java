package gearlift.shopstandin;

import jakarta.servlet.http.HttpSessionEvent;
import jakarta.servlet.http.HttpSessionListener;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.IntSupplier;

/** Counts the container's sessions of this web application for /health and /metrics. */
public final class SessionCounter implements HttpSessionListener {
    private static final AtomicInteger LIVE = new AtomicInteger();
    private static final AtomicLong CREATED = new AtomicLong();
    private static final AtomicLong ENDED = new AtomicLong();

    static final SessionStats STATS = new SessionStats() {
        @Override
        public int live() {
            return LIVE.get();
        }

        @Override
        public long created() {
            return CREATED.get();
        }

        @Override
        public long expired() {
            return ENDED.get();
        }
    };

    /** This process's counters with the live count from elsewhere (the session store's key count). */
    static SessionStats withLive(IntSupplier live) {
        return new SessionStats() {
            @Override
            public int live() {
                return live.getAsInt();
            }

            @Override
            public long created() {
                return CREATED.get();
            }

            @Override
            public long expired() {
                return ENDED.get();
            }
        };
    }

    @Override
    public void sessionCreated(HttpSessionEvent se) {
        LIVE.incrementAndGet();
        CREATED.incrementAndGet();
    }

    @Override
    public void sessionDestroyed(HttpSessionEvent se) {
        LIVE.decrementAndGet();
        ENDED.incrementAndGet();
    }
}
