package gearlift.shopstandin;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpHandler;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.util.Locale;
import java.util.Map;

/** The jar's front end: com.sun.net.httpserver exchanges in, {@link ShopHandler} responses out. */
final class JdkHttpFront implements HttpHandler {
    private final ShopHandler shop;
    private final SessionStore sessions;

    JdkHttpFront(ShopHandler shop, SessionStore sessions) {
        this.shop = shop;
        this.sessions = sessions;
    }

    /** HttpReq over an exchange; remembers a session created while handling it. */
    private final class Req implements HttpReq {
        private final HttpExchange ex;
        private SessionStore.Stored session;
        private boolean looked;
        SessionStore.Stored createdSession;

        Req(HttpExchange ex) {
            this.ex = ex;
        }

        @Override
        public String method() {
            return ex.getRequestMethod();
        }

        @Override
        public String path() {
            return ex.getRequestURI().getRawPath();
        }

        @Override
        public String header(String name) {
            return ex.getRequestHeaders().getFirst(name);
        }

        @Override
        public long contentLength() {
            String v = header("Content-Length");
            if (v == null) {
                return "chunked".equalsIgnoreCase(header("Transfer-Encoding")) ? -1 : 0;
            }
            try {
                return Long.parseLong(v.strip());
            } catch (NumberFormatException e) {
                return -1;
            }
        }

        @Override
        public InputStream body() {
            return ex.getRequestBody();
        }

        @Override
        public ShopSession session(boolean create) {
            if (!looked) {
                looked = true;
                session = sessions.find(JarSessions.cookieValue(ex.getRequestHeaders().get("Cookie")));
            }
            if (session == null && create) {
                session = sessions.create();
                createdSession = session;
            }
            return session;
        }

        /** HTTPS as seen by the client: the proxy in front (Apache, the ALB) says so. */
        boolean secure() {
            String proto = header("X-Forwarded-Proto");
            return proto != null && "https".equals(proto.split(",", 2)[0].strip().toLowerCase(Locale.ROOT));
        }
    }

    @Override
    public void handle(HttpExchange ex) {
        long t0 = System.nanoTime();
        Req req = new Req(ex);
        String method = ex.getRequestMethod();
        String path = req.path();
        int status = 500;
        try {
            Resp r = shop.handle(req);
            if (req.createdSession != null) {
                ex.getResponseHeaders().add("Set-Cookie", JarSessions.setCookie(req.createdSession.id(), req.secure()));
            }
            status = r.status;
            send(ex, r);
        } catch (IOException e) {
            // client went away; nothing more to do
        } finally {
            ex.close();
            Log.request(method, path, status, (System.nanoTime() - t0) / 1_000_000);
        }
    }

    private static void send(HttpExchange ex, Resp r) throws IOException {
        if (r.contentType != null) {
            ex.getResponseHeaders().set("Content-Type", r.contentType);
        }
        if (r.file == null) {
            ex.getResponseHeaders().set("Cache-Control", "no-store");
        }
        for (Map.Entry<String, String> h : r.headers.entrySet()) {
            ex.getResponseHeaders().set(h.getKey(), h.getValue());
        }
        if (r.noBody) {
            ex.sendResponseHeaders(r.status, -1);
            return;
        }
        if (r.file != null) {
            ex.sendResponseHeaders(r.status, r.length);
            try (OutputStream out = ex.getResponseBody()) {
                Files.copy(r.file, out);
            }
            return;
        }
        byte[] body = r.bytes();
        ex.sendResponseHeaders(r.status, body.length);
        try (OutputStream out = ex.getResponseBody()) {
            out.write(body);
        }
    }
}
