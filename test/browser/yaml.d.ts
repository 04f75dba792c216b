/** Scenario files bundled as text (esbuild's `text` loader), for the browser test's page. */
declare module "*.yaml" {
  const text: string;
  export default text;
}
