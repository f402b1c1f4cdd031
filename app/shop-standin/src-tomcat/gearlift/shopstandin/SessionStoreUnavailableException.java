package gearlift.shopstandin;

import java.io.IOException;
import java.io.UncheckedIOException;

/**
 * The session store cannot be reached (or answers with errors): the request must fail rather than
 * start an empty session over the client's cookie. An UncheckedIOException, so a web application
 * can catch it without knowing this class (the shop's servlet answers 503); {@link SessionStoreValve}
 * answers 503 when it is thrown outside the application (e.g. by an authenticator reading the session).
 */
public class SessionStoreUnavailableException extends UncheckedIOException {
    private static final long serialVersionUID = 1L;

    public SessionStoreUnavailableException(IOException cause) {
        super("session store unreachable: " + cause.getMessage(), cause);
    }
}
