package gearlift.shopstandin;

import jakarta.servlet.ServletException;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import org.apache.catalina.connector.Request;
import org.apache.catalina.connector.Response;
import org.apache.catalina.valves.ValveBase;

/**
 * First valve of a context whose sessions are in the store ({@link RedisSessionManager}): Tomcat
 * reads the session before the application runs (the authenticator looks for a cached principal in
 * it), so a store that cannot be reached surfaces there. This answers such a request with 503 and
 * {@code Retry-After: 1} (JSON, as the shop's own answer) instead of a 500 error page; the session
 * stays in the store and the client retries. Declared in Tomcat's context.xml before any other valve.
 */
public class SessionStoreValve extends ValveBase {
    private static final byte[] BODY =
            "{\"error\":\"session store unavailable, retry later\"}".getBytes(StandardCharsets.UTF_8);

    public SessionStoreValve() {
        super(true);
    }

    @Override
    public void invoke(Request request, Response response) throws IOException, ServletException {
        try {
            getNext().invoke(request, response);
        } catch (SessionStoreUnavailableException e) {
            if (response.isCommitted()) {
                throw e;
            }
            containerLog.warn(e.getMessage() + " (" + request.getMethod() + " " + request.getDecodedRequestURI() + ")");
            response.reset();
            response.setStatus(503);
            response.setHeader("Retry-After", "1");
            response.setHeader("Cache-Control", "no-store");
            response.setContentType("application/json");
            response.setContentLength(BODY.length);
            OutputStream out = response.getOutputStream();
            out.write(BODY);
            response.flushBuffer();
        }
    }
}
