package gearlift.shopstandin;

/**
 * The jar's sessions: in memory ({@link JarSessions}, as a servlet container keeps them by default)
 * or in Redis ({@link RedisSessions}, shared by every host). Ids are issued only here: an unknown
 * id from a client is ignored, never adopted (no session fixation).
 */
interface SessionStore extends SessionStats {
    /** A session of the store: its id goes into the JSESSIONID cookie. */
    interface Stored extends ShopSession {
        String id();
    }

    /** Thrown when the store cannot be reached: the request fails (503) instead of losing the cart. */
    final class Unavailable extends RuntimeException {
        private static final long serialVersionUID = 1L;

        Unavailable(String msg, Throwable cause) {
            super(msg, cause);
        }
    }

    /** The live session with this id (its idle timer restarted), or null. */
    Stored find(String id);

    /** A new session, or null when no more can be created. */
    Stored create();

    void close();
}
