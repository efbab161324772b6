package contactq;

import java.io.BufferedReader;
import java.io.FileOutputStream;
import java.io.FileDescriptor;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Enumeration;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

import javax.jms.BytesMessage;
import javax.jms.Connection;
import javax.jms.DeliveryMode;
import javax.jms.MapMessage;
import javax.jms.Message;
import javax.jms.ObjectMessage;
import javax.jms.Session;
import javax.jms.StreamMessage;
import javax.jms.TextMessage;

import org.apache.activemq.ActiveMQConnectionFactory;
import org.apache.activemq.command.ActiveMQDestination;
import org.codehaus.jettison.json.JSONArray;
import org.codehaus.jettison.json.JSONObject;
import org.springframework.jms.connection.CachingConnectionFactory;
import org.springframework.jms.core.JmsTemplate;

/**
 * Plays the legacy Java platform in tests: Spring's JmsTemplate on ActiveMQ's OpenWire client, as that platform uses
 * them. One JSON line per result on stdout; see tests/java/run.sh for the commands.
 */
public final class JmsClient {
    static final String URL = System.getenv().getOrDefault("JMS_BROKER_URL", "tcp://127.0.0.1:61616");
    // UTF-8 whatever the locale: contact names are Chinese.
    static final PrintStream OUT = new PrintStream(new FileOutputStream(FileDescriptor.out), true, StandardCharsets.UTF_8);
    static final String USAGE = String.join("\n",
        "usage: run.sh send QUEUE map|text|bytes JSON",
        "       run.sh send-many QUEUE map|text|bytes          (one JSON document a line on stdin)",
        "       run.sh publish TOPIC JSON                      (a TextMessage to a topic)",
        "       run.sh receive QUEUE COUNT TIMEOUT_S [--full]",
        "       run.sh subscribe TOPIC[,TOPIC...] COUNT TIMEOUT_S [--full]");

    public static void main(String[] args) {
        CachingConnectionFactory factory = null;
        int rc = 0;
        try {
            if (args.length < 2) throw new IllegalArgumentException(USAGE);
            // Without the cache JmsTemplate opens a connection per operation (about 100 sends/s).
            factory = new CachingConnectionFactory(new ActiveMQConnectionFactory(URL));
            JmsTemplate jms = new JmsTemplate(factory);
            boolean full = args[args.length - 1].equals("--full");
            switch (args[0]) {
                case "send" -> { need(args, 4); send(jms, args[1], args[2], args[3]); }
                case "send-many" -> {
                    need(args, 3);
                    BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
                    for (String line; (line = in.readLine()) != null; ) {
                        if (!line.isBlank()) send(jms, args[1], args[2], line);
                    }
                }
                case "publish" -> {
                    need(args, 3);
                    JmsTemplate topics = new JmsTemplate(factory);
                    topics.setPubSubDomain(true);
                    send(topics, args[1], "text", args[2]);
                }
                case "receive" -> { need(args, 4); receive(jms, args[1], Integer.parseInt(args[2]), seconds(args[3]), full); }
                case "subscribe" -> { need(args, 4); subscribe(factory, args[1].split(","), Integer.parseInt(args[2]), seconds(args[3]), full); }
                default -> throw new IllegalArgumentException(USAGE);
            }
        } catch (Throwable e) {
            e.printStackTrace();
            rc = 1;
        } finally {
            if (factory != null) factory.destroy();
        }
        OUT.flush();
        System.exit(rc);  // the OpenWire client leaves non-daemon threads behind
    }

    static void need(String[] args, int n) {
        if (args.length < n) throw new IllegalArgumentException(USAGE);
    }

    static long seconds(String s) {
        return (long) (Double.parseDouble(s) * 1000);
    }

    /** Sends one message the way the platform does and prints {"sent": JMSMessageID}. */
    static void send(JmsTemplate jms, String dest, String kind, String json) throws Exception {
        Message[] sent = new Message[1];
        switch (kind) {
            // convertAndSend makes a MapMessage of a Map and a TextMessage of a String.
            case "map" -> jms.convertAndSend(dest, toMap(new JSONObject(json)), m -> sent[0] = m);
            case "text" -> jms.convertAndSend(dest, json, m -> sent[0] = m);
            case "bytes" -> jms.send(dest, session -> {
                BytesMessage m = session.createBytesMessage();
                m.writeBytes(json.getBytes(StandardCharsets.UTF_8));
                return sent[0] = m;
            });
            default -> throw new IllegalArgumentException("KIND must be map, text or bytes, not " + kind);
        }
        // The producer sets the ID on the message object it was given.
        line(new JSONObject().put("sent", sent[0].getJMSMessageID()));
    }

    /** JSON object to HashMap: strings stay String, integers Long, other numbers Double, objects HashMap, arrays List. */
    static HashMap<String, Object> toMap(JSONObject o) throws Exception {
        HashMap<String, Object> map = new HashMap<>();
        for (Iterator<?> keys = o.keys(); keys.hasNext(); ) {
            String key = (String) keys.next();
            map.put(key, o.isNull(key) ? null : toJava(o.get(key)));
        }
        return map;
    }

    static Object toJava(Object v) throws Exception {
        if (v instanceof JSONObject o) return toMap(o);
        if (v instanceof JSONArray a) {
            List<Object> list = new ArrayList<>();
            for (int i = 0; i < a.length(); i++) list.add(a.isNull(i) ? null : toJava(a.get(i)));
            return list;
        }
        if (v instanceof Integer || v instanceof Long || v instanceof Short || v instanceof Byte) return ((Number) v).longValue();
        if (v instanceof BigInteger b) return b.longValueExact();
        if (v instanceof Number n) return n.doubleValue();
        return v;  // String, Boolean
    }

    static void receive(JmsTemplate jms, String queue, int count, long timeoutMs, boolean full) throws Exception {
        long deadline = System.currentTimeMillis() + timeoutMs;
        for (int got = 0; got < count; ) {
            long left = deadline - System.currentTimeMillis();
            if (left <= 0) break;
            jms.setReceiveTimeout(left);
            Message m = jms.receive(queue);
            if (m == null) break;
            line(describe(m, full));
            got++;
        }
    }

    static void subscribe(CachingConnectionFactory factory, String[] topics, int count, long timeoutMs, boolean full)
            throws Exception {
        LinkedBlockingQueue<Message> received = new LinkedBlockingQueue<>();
        Connection conn = factory.createConnection();
        Session session = conn.createSession(false, Session.AUTO_ACKNOWLEDGE);
        for (String t : topics) session.createConsumer(session.createTopic(t.trim())).setMessageListener(received::add);
        conn.start();
        // createConsumer returns once the broker has the subscription: the caller may publish now.
        line(new JSONObject().put("ready", true));
        long deadline = System.currentTimeMillis() + timeoutMs;
        for (int got = 0; got < count; got++) {
            Message m = received.poll(Math.max(0, deadline - System.currentTimeMillis()), TimeUnit.MILLISECONDS);
            if (m == null) break;
            line(describe(m, full));
        }
        session.close();
    }

    /** type, correlationId, persistent, destination, text; with --full also messageId, replyTo, properties, map. */
    static JSONObject describe(Message m, boolean full) throws Exception {
        String type = m instanceof TextMessage ? "TextMessage" : m instanceof BytesMessage ? "BytesMessage"
            : m instanceof MapMessage ? "MapMessage" : m instanceof ObjectMessage ? "ObjectMessage"
            : m instanceof StreamMessage ? "StreamMessage" : "Message";
        Object text = JSONObject.NULL;
        if (m instanceof TextMessage t) {
            text = nul(t.getText());
        } else if (m instanceof BytesMessage b) {
            byte[] body = new byte[(int) b.getBodyLength()];
            b.readBytes(body);
            text = new String(body, StandardCharsets.UTF_8);
        }
        JSONObject j = new JSONObject()
            .put("type", type)
            .put("correlationId", nul(m.getJMSCorrelationID()))
            .put("persistent", m.getJMSDeliveryMode() == DeliveryMode.PERSISTENT)
            .put("destination", nul(name(m.getJMSDestination())))
            .put("text", text);
        if (full) {
            JSONObject props = new JSONObject();
            for (Enumeration<?> e = m.getPropertyNames(); e.hasMoreElements(); ) {
                String k = (String) e.nextElement();
                props.put(k, toJson(m.getObjectProperty(k)));
            }
            Object map = JSONObject.NULL;
            if (m instanceof MapMessage mm) {
                JSONObject o = new JSONObject();
                for (Enumeration<?> e = mm.getMapNames(); e.hasMoreElements(); ) {
                    String k = (String) e.nextElement();
                    o.put(k, toJson(mm.getObject(k)));
                }
                map = o;
            }
            j.put("messageId", nul(m.getJMSMessageID()))
                .put("replyTo", nul(name(m.getJMSReplyTo())))
                .put("properties", props)
                .put("map", map);
        }
        return j;
    }

    static String name(javax.jms.Destination d) {
        return d == null ? null : ((ActiveMQDestination) d).getPhysicalName();
    }

    static Object nul(Object v) {
        return v == null ? JSONObject.NULL : v;
    }

    static Object toJson(Object v) throws Exception {
        if (v instanceof Map<?, ?> map) {
            JSONObject o = new JSONObject();
            for (Map.Entry<?, ?> e : map.entrySet()) o.put(String.valueOf(e.getKey()), toJson(e.getValue()));
            return o;
        }
        if (v instanceof List<?> list) {
            JSONArray a = new JSONArray();
            for (Object x : list) a.put(toJson(x));
            return a;
        }
        if (v instanceof byte[] b) return java.util.Base64.getEncoder().encodeToString(b);
        return nul(v);
    }

    static void line(JSONObject o) {
        OUT.println(o.toString());
        OUT.flush();
    }
}
