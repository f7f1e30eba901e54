// Callbacks waiting for something to happen to one job (its end recorded, its end handled), by job ID.
// Waking a job's list calls each callback once and forgets the list.

/** Per-job lists of callbacks. */
export class WakeLists {
  private readonly lists = new Map<string, Set<() => void>>();

  /** Adds `wake` to job `id`'s list; returns its removal, which is true if `wake` was still waiting. */
  add(id: string, wake: () => void): () => boolean {
    let list = this.lists.get(id);
    if (!list) this.lists.set(id, (list = new Set()));
    const waiting = list;
    waiting.add(wake);
    return () => {
      const was = waiting.delete(wake);
      if (waiting.size === 0 && this.lists.get(id) === waiting) this.lists.delete(id);
      return was;
    };
  }

  /** Calls every callback waiting on job `id`, once, and empties its list. */
  wake(id: string): void {
    const list = this.lists.get(id);
    if (!list) return;
    this.lists.delete(id);
    const waiting = [...list];
    // Emptied first: a removal after this says the callback was no longer waiting.
    list.clear();
    for (const wake of waiting) wake();
  }

  /** Jobs with at least one callback waiting. */
  get size(): number {
    return this.lists.size;
  }
}
