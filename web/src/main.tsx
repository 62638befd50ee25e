import { render } from 'preact';
function App() { return <div>hello</div>; }
render(<App />, document.getElementById('app')!);
