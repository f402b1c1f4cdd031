package gearlift.shopstandin;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Hand-written JSON: a writer for Map/List/String/Number/Boolean/null and a strict RFC 8259
 * parser (no comments, no trailing commas, no duplicate keys, no unescaped control characters,
 * nothing after the top-level value, bounded nesting). Numbers are returned as {@link Num} with
 * their literal text so callers can insist on integers.
 */
final class Json {
    private static final int MAX_DEPTH = 16;

    private Json() {}

    // ---------------------------------------------------------------- writing

    static String write(Object v) {
        StringBuilder b = new StringBuilder();
        write(b, v);
        return b.toString();
    }

    /** Object from key/value pairs, keeping their order. */
    static Map<String, Object> obj(Object... kv) {
        if (kv.length % 2 != 0) {
            throw new IllegalArgumentException("odd number of arguments");
        }
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) {
            m.put((String) kv[i], kv[i + 1]);
        }
        return m;
    }

    private static void write(StringBuilder b, Object v) {
        if (v == null) {
            b.append("null");
        } else if (v instanceof String) {
            quote(b, (String) v);
        } else if (v instanceof Boolean || v instanceof Integer || v instanceof Long) {
            b.append(v);
        } else if (v instanceof Num) {
            b.append(((Num) v).text);
        } else if (v instanceof Map) {
            b.append('{');
            boolean first = true;
            for (Map.Entry<?, ?> e : ((Map<?, ?>) v).entrySet()) {
                if (!first) {
                    b.append(',');
                }
                first = false;
                quote(b, String.valueOf(e.getKey()));
                b.append(':');
                write(b, e.getValue());
            }
            b.append('}');
        } else if (v instanceof List) {
            b.append('[');
            boolean first = true;
            for (Object o : (List<?>) v) {
                if (!first) {
                    b.append(',');
                }
                first = false;
                write(b, o);
            }
            b.append(']');
        } else {
            throw new IllegalArgumentException("cannot write " + v.getClass().getName() + " as JSON");
        }
    }

    private static void quote(StringBuilder b, String s) {
        b.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"':
                    b.append("\\\"");
                    break;
                case '\\':
                    b.append("\\\\");
                    break;
                case '\n':
                    b.append("\\n");
                    break;
                case '\r':
                    b.append("\\r");
                    break;
                case '\t':
                    b.append("\\t");
                    break;
                default:
                    if (c < 0x20 || c == 0x7f || c == '\u2028' || c == '\u2029') {
                        b.append(String.format("\\u%04x", (int) c));
                    } else {
                        b.append(c);
                    }
            }
        }
        b.append('"');
    }

    // ---------------------------------------------------------------- parsing

    /** A JSON number, kept as its literal text. */
    static final class Num {
        final String text;

        Num(String text) {
            this.text = text;
        }

        boolean isInteger() {
            return text.indexOf('.') < 0 && text.indexOf('e') < 0 && text.indexOf('E') < 0;
        }
    }

    static final class ParseError extends Exception {
        private static final long serialVersionUID = 1L;

        ParseError(String msg, int pos) {
            super(msg + " at offset " + pos);
        }
    }

    static Object parse(String s) throws ParseError {
        Json.Parser p = new Json.Parser(s);
        p.ws();
        Object v = p.value(0);
        p.ws();
        if (p.i != s.length()) {
            throw new ParseError("unexpected data after the JSON value", p.i);
        }
        return v;
    }

    private static final class Parser {
        private final String s;
        private int i;

        Parser(String s) {
            this.s = s;
        }

        void ws() {
            while (i < s.length()) {
                char c = s.charAt(i);
                if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
                    i++;
                } else {
                    break;
                }
            }
        }

        Object value(int depth) throws ParseError {
            if (depth > MAX_DEPTH) {
                throw new ParseError("nesting too deep", i);
            }
            if (i >= s.length()) {
                throw new ParseError("unexpected end of input", i);
            }
            char c = s.charAt(i);
            switch (c) {
                case '{':
                    return object(depth);
                case '[':
                    return array(depth);
                case '"':
                    return string();
                case 't':
                    return literal("true", Boolean.TRUE);
                case 'f':
                    return literal("false", Boolean.FALSE);
                case 'n':
                    return literal("null", null);
                default:
                    if (c == '-' || (c >= '0' && c <= '9')) {
                        return number();
                    }
                    throw new ParseError("unexpected character", i);
            }
        }

        private Object literal(String word, Object v) throws ParseError {
            if (!s.startsWith(word, i)) {
                throw new ParseError("invalid literal", i);
            }
            i += word.length();
            return v;
        }

        private Map<String, Object> object(int depth) throws ParseError {
            Map<String, Object> m = new LinkedHashMap<>();
            i++; // {
            ws();
            if (peek() == '}') {
                i++;
                return m;
            }
            while (true) {
                ws();
                if (peek() != '"') {
                    throw new ParseError("expected a string key", i);
                }
                int keyAt = i;
                String k = string();
                ws();
                expect(':');
                ws();
                Object v = value(depth + 1);
                if (m.containsKey(k)) {
                    throw new ParseError("duplicate key", keyAt);
                }
                m.put(k, v);
                ws();
                char c = peek();
                i++;
                if (c == '}') {
                    return m;
                }
                if (c != ',') {
                    throw new ParseError("expected ',' or '}'", i - 1);
                }
            }
        }

        private List<Object> array(int depth) throws ParseError {
            List<Object> a = new ArrayList<>();
            i++; // [
            ws();
            if (peek() == ']') {
                i++;
                return a;
            }
            while (true) {
                ws();
                a.add(value(depth + 1));
                ws();
                char c = peek();
                i++;
                if (c == ']') {
                    return a;
                }
                if (c != ',') {
                    throw new ParseError("expected ',' or ']'", i - 1);
                }
            }
        }

        private String string() throws ParseError {
            i++; // opening quote
            StringBuilder b = new StringBuilder();
            while (true) {
                if (i >= s.length()) {
                    throw new ParseError("unterminated string", i);
                }
                char c = s.charAt(i++);
                if (c == '"') {
                    break;
                }
                if (c < 0x20) {
                    throw new ParseError("control character in string", i - 1);
                }
                if (c != '\\') {
                    b.append(c);
                    continue;
                }
                if (i >= s.length()) {
                    throw new ParseError("unterminated escape", i);
                }
                char e = s.charAt(i++);
                switch (e) {
                    case '"':
                    case '\\':
                    case '/':
                        b.append(e);
                        break;
                    case 'b':
                        b.append('\b');
                        break;
                    case 'f':
                        b.append('\f');
                        break;
                    case 'n':
                        b.append('\n');
                        break;
                    case 'r':
                        b.append('\r');
                        break;
                    case 't':
                        b.append('\t');
                        break;
                    case 'u':
                        b.append(hex4());
                        break;
                    default:
                        throw new ParseError("invalid escape", i - 1);
                }
            }
            String out = b.toString();
            // Reject lone surrogates (e.g. "\ud800"): not valid Unicode text.
            for (int k = 0; k < out.length(); k++) {
                char c = out.charAt(k);
                if (Character.isHighSurrogate(c)) {
                    if (k + 1 >= out.length() || !Character.isLowSurrogate(out.charAt(k + 1))) {
                        throw new ParseError("invalid surrogate in string", i);
                    }
                    k++;
                } else if (Character.isLowSurrogate(c)) {
                    throw new ParseError("invalid surrogate in string", i);
                }
            }
            return out;
        }

        private char hex4() throws ParseError {
            if (i + 4 > s.length()) {
                throw new ParseError("truncated \\u escape", i);
            }
            int v = 0;
            for (int k = 0; k < 4; k++) {
                int d = Character.digit(s.charAt(i + k), 16);
                if (d < 0 || s.charAt(i + k) > 'f') {
                    throw new ParseError("invalid \\u escape", i);
                }
                v = v * 16 + d;
            }
            i += 4;
            return (char) v;
        }

        private Num number() throws ParseError {
            int start = i;
            if (peek() == '-') {
                i++;
            }
            if (peek() == '0') {
                i++;
            } else if (isDigit(peek())) {
                digits();
            } else {
                throw new ParseError("invalid number", i);
            }
            if (peek() == '.') {
                i++;
                if (!isDigit(peek())) {
                    throw new ParseError("invalid number", i);
                }
                digits();
            }
            if (peek() == 'e' || peek() == 'E') {
                i++;
                if (peek() == '+' || peek() == '-') {
                    i++;
                }
                if (!isDigit(peek())) {
                    throw new ParseError("invalid number", i);
                }
                digits();
            }
            return new Num(s.substring(start, i));
        }

        private void digits() {
            while (isDigit(peek())) {
                i++;
            }
        }

        private static boolean isDigit(char c) {
            return c >= '0' && c <= '9';
        }

        private char peek() {
            return i < s.length() ? s.charAt(i) : '\0';
        }

        private void expect(char c) throws ParseError {
            if (peek() != c) {
                throw new ParseError("expected '" + c + "'", i);
            }
            i++;
        }
    }
}
