package org.quant4j.tokenizer;

import java.util.Arrays;

/**
 * A binary min-heap of merge candidates without objects: each entry is a {@code long} priority (smaller first) and
 * a {@code long} payload. BPE merging pushes and pops millions of these on a large text.
 */
final class MergeQueue {
    private long[] priorities = new long[64];
    private long[] payloads = new long[64];
    private int size;
    private long topPayload;

    boolean isEmpty() { return size == 0; }

    void clear() { size = 0; }

    void push(long priority, long payload) {
        if (size == priorities.length) {
            priorities = Arrays.copyOf(priorities, size * 2);
            payloads = Arrays.copyOf(payloads, size * 2);
        }
        int i = size++;
        while (i > 0) { // sift up
            int parent = (i - 1) >>> 1;
            if (priorities[parent] <= priority) break;
            priorities[i] = priorities[parent];
            payloads[i] = payloads[parent];
            i = parent;
        }
        priorities[i] = priority;
        payloads[i] = payload;
    }

    /** Removes the smallest entry and returns its priority; its payload is then {@link #poppedPayload()}. */
    long pop() {
        long top = priorities[0];
        topPayload = payloads[0];
        long lastPriority = priorities[--size];
        long lastPayload = payloads[size];
        int i = 0;
        while (true) { // sift down
            int child = 2 * i + 1;
            if (child >= size) break;
            if (child + 1 < size && priorities[child + 1] < priorities[child]) child++;
            if (priorities[child] >= lastPriority) break;
            priorities[i] = priorities[child];
            payloads[i] = payloads[child];
            i = child;
        }
        priorities[i] = lastPriority;
        payloads[i] = lastPayload;
        return top;
    }

    long poppedPayload() { return topPayload; }
}
