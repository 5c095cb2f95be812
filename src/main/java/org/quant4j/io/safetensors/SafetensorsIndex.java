package org.quant4j.io.safetensors;

import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.quant4j.io.PyJson;
import org.quant4j.util.Q4jException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * {@code model.safetensors.index.json}: which shard holds each tensor.
 * <pre>
 *   {"metadata": {"total_size": 123456}, "weight_map": {"lm_head.weight": "model-00003-of-00003.safetensors", ...}}
 * </pre>
 *
 * @param totalSize bytes of tensor data over all shards ({@code metadata.total_size}), or -1 if absent
 * @param weightMap tensor name to shard file name, in the index's order
 */
public record SafetensorsIndex(long totalSize, Map<String, String> weightMap) {

    static final ObjectMapper JSON = JsonMapper.builder().enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION).build();

    public static SafetensorsIndex read(Path indexFile) {
        JsonNode root;
        try {
            root = JSON.readTree(Files.readAllBytes(indexFile));
        } catch (NoSuchFileException e) {
            throw new Q4jException(indexFile + ": no such file");
        } catch (IOException e) {
            String msg = e instanceof com.fasterxml.jackson.core.JsonProcessingException j && j.getOriginalMessage() != null
                    ? j.getOriginalMessage() + (j.getLocation() != null ? " at offset " + j.getLocation().getByteOffset() : "")
                    : e.getMessage();
            throw new Q4jException(indexFile + ": not a valid index: " + String.valueOf(msg).replaceAll("\\s+", " "), e);
        }
        if (root == null || !root.isObject()) throw new Q4jException(indexFile + ": not a JSON object");
        JsonNode map = root.get("weight_map");
        if (map == null || !map.isObject()) throw new Q4jException(indexFile + ": has no \"weight_map\" object");
        Map<String, String> weightMap = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = map.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            if (!e.getValue().isTextual()) throw new Q4jException(indexFile + ": weight_map entry for " + e.getKey() + " is not a file name");
            String file = e.getValue().textValue();
            if (file.isEmpty() || file.contains("/") || file.contains("\\") || file.equals(".") || file.equals("..")) {
                throw new Q4jException(indexFile + ": weight_map sends tensor " + e.getKey() + " to \"" + file
                        + "\", which is not a file name beside the index");
            }
            weightMap.put(e.getKey(), file);
        }
        long total = -1;
        JsonNode meta = root.get("metadata");
        if (meta != null && meta.isObject() && meta.get("total_size") != null && meta.get("total_size").canConvertToLong()) {
            total = meta.get("total_size").asLong();
        }
        return new SafetensorsIndex(total, weightMap);
    }

    /** The index as transformers writes it: {@code json.dumps(index, indent=2, sort_keys=True) + "\n"}. */
    public static String toJson(long totalSize, Map<String, String> weightMap) {
        ObjectNode root = JsonNodeFactory.instance.objectNode();
        root.putObject("metadata").put("total_size", totalSize);
        ObjectNode map = root.putObject("weight_map");
        for (Map.Entry<String, String> e : weightMap.entrySet()) map.put(e.getKey(), e.getValue());
        return PyJson.dumps(root);
    }
}
