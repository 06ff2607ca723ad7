from pasture.cli import main

main()
