"""``python -m mixed_r1 paths``: where the file-loaded adapters live (EasyR1 and OpenRLHF take a
file path, not a module name). ``python -m mixed_r1 score FILE.jsonl``: score a JSON Lines file
with the process-default configuration, one result a line (as the command line does)."""
import json
import os
import sys


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    here = os.path.dirname(os.path.abspath(__file__))
    if args[:1] == ["paths"]:
        print(f"easyr1    {os.path.join(here, 'easyr1_reward.py')}:compute_score")
        print(f"openrlhf  {os.path.join(here, 'openrlhf.py')}")
        print("verl      pkg://mixed_r1.verl  (name: compute_score; compute_score_batch for verl <= 0.7's batch manager)")
        print("trl       from mixed_r1.trl import format_reward, matching_reward, chart_reward, "
              "iou_reward, bmas_reward, mixed_reward")
        return 0
    if len(args) == 2 and args[0] == "score":
        import mixed_r1

        with open(args[1], encoding="utf-8") as f:
            lines = f.read().splitlines()
        for result in mixed_r1.score(lines):
            print(json.dumps(result))
        return 0
    print(__doc__.strip(), file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
