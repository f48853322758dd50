declare module 'node-gyp-build' {
  /** Loads the prebuild for this platform from `dir/prebuilds`, or the from-source build in `dir/build`. */
  function load(dir: string): unknown;
  export = load;
}
