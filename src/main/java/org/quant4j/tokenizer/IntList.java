package org.quant4j.tokenizer;

import java.util.Arrays;

/** A growable list of ints (token ids, lengths) without boxing. */
final class IntList {
    private int[] values;
    private int size;

    IntList() { this(16); }

    IntList(int capacity) { values = new int[Math.max(capacity, 4)]; }

    void add(int v) {
        if (size == values.length) values = Arrays.copyOf(values, values.length * 2);
        values[size++] = v;
    }

    int get(int i) { return values[i]; }

    int size() { return size; }

    void truncate(int newSize) { size = newSize; }

    int[] toArray() { return Arrays.copyOf(values, size); }
}
