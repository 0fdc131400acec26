// One thing at a time: a promise chain that runs each task after the previous one settled.

/** A lock for async tasks: `run(f)` starts `f` once every task given before has ended (either way). */
export function serializer(): <T>(f: () => Promise<T>) => Promise<T> {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(f: () => Promise<T>) => {
    const next = tail.then(f, f);
    tail = next.catch(() => undefined);
    return next;
  };
}
