// A small observable store: one immutable state object, replaced on each update, and a Preact
// hook that re-renders a component when the slice it selects changes.

import { useEffect, useReducer, useRef } from 'preact/hooks';

export class Store<S> {
  private listeners = new Set<() => void>();
  constructor(private state: S) {}

  get(): S {
    return this.state;
  }

  update(fn: (s: S) => Partial<S>): void {
    this.state = { ...this.state, ...fn(this.state) };
    for (const l of [...this.listeners]) l();
  }

  subscribe(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }
}

export function useSelect<S, T>(store: Store<S>, select: (s: S) => T): T {
  const [, force] = useReducer((n: number) => n + 1, 0);
  const value = select(store.get());
  const last = useRef(value);
  last.current = value;
  const selectRef = useRef(select);
  selectRef.current = select;
  useEffect(() => {
    const check = () => {
      if (!Object.is(selectRef.current(store.get()), last.current)) force(0);
    };
    const stop = store.subscribe(check);
    // Effects run after paint: an update between render and now would be missed otherwise.
    check();
    return stop;
  }, [store]);
  return value;
}
