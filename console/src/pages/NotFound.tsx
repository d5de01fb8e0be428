import { Link } from "react-router";
import { Empty } from "../components/States";

export default function NotFound() {
  return (
    <Empty title="No such page">
      <Link to="/use-cases">Back to the use cases</Link>
    </Empty>
  );
}
